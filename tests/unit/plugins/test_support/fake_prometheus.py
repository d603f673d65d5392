# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Prometheus instant query API as a real HTTP server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import parse_qs, urlparse

from ansible_collections.ragops.platform.tests.unit.plugins.test_support.http_server import Reply, serve_tcp


class FakePrometheus:
    """GET /api/v1/query answered by ``answer(query)`` -> list of (labels, value) or a (status, body) error."""

    def __init__(self, answer):
        self.answer = answer
        self.queries = []
        self.server = serve_tcp(self)
        self.url = self.server.base_url

    def handle(self, method, path, headers, body):
        url = urlparse(path)
        if url.path != "/api/v1/query":
            return Reply(404, body="404 page not found\n")
        query = parse_qs(url.query).get("query", [""])[0]
        self.queries.append(query)
        answer = self.answer(query)
        if isinstance(answer, tuple):
            return Reply.of(answer[0], answer[1])
        result = [{"metric": labels, "value": [1700000000.0, str(value)]} for labels, value in answer]
        return Reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def close(self):
        self.server.close()
