# -*- coding: utf-8 -*-
"""The workload definition (ragops_app): the reference default passes its argument specs, bad ones fail naming the field.

The specs are what Ansible validates when the ragops role runs as a dependency, before any task of a playbook.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "ragops")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "notes-api", "workload.yml")


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


SPEC = _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]["ragops_app"]


def _reference():
    workload = copy.deepcopy(_load("defaults", "main.yml")["ragops_app_reference"])
    # The two templated values, as the local inventory resolves them.
    workload["image"]["source"] = "build"
    workload["image"]["repository"] = "ragops/rag-service"
    return workload


def _errors(workload):
    validator = ArgumentSpecValidator({"ragops_app": SPEC})
    return validator.validate({"ragops_app": workload}, validate_role_argument_spec=True).error_messages


def test_the_reference_definition_is_valid():
    assert _errors(_reference()) == []


def test_the_second_example_workload_is_valid():
    with open(EXAMPLE) as handle:
        assert _errors(yaml.safe_load(handle)["ragops_app"]) == []


def test_a_plain_text_health_check_is_expressible():
    workload = _reference()
    workload["health"] = {"checks": [{"path": "/healthz", "body_contains": "ok"}]}
    assert _errors(workload) == []


@pytest.mark.parametrize("mutate, field", [
    (lambda w: w.pop("image"), "image"),
    (lambda w: w["image"].pop("repository"), "repository found in ragops_app -> image"),
    (lambda w: w.update(port="eighty"), "port"),
    (lambda w: w["health"]["checks"][0].pop("path"), "path found in ragops_app -> health -> checks"),
    (lambda w: w["routes"][0].pop("path"), "path found in ragops_app -> routes"),
    (lambda w: w["routes"][0].update(match="regex"), "match"),
    (lambda w: w.update(pre_switch={"timeout": 10}), "command found in ragops_app -> pre_switch"),
    (lambda w: w["analysis"].update(queries=[{"name": "q"}]), "query found in ragops_app -> analysis -> queries"),
])
def test_a_bad_definition_names_the_field(mutate, field):
    workload = _reference()
    mutate(workload)
    errors = _errors(workload)
    assert errors, "the bad definition passed"
    assert any(field in message for message in errors), errors
