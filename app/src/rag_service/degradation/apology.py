"""Last degradation layer: a French apology pointing to support. Cannot fail."""

from __future__ import annotations

from rag_service.models import Answer


def apology(query: str, support_contact: str) -> Answer:
    return Answer(
        query=query,
        answer=(
            "Désolé, nous ne pouvons pas répondre à votre question pour le moment. "
            f"Veuillez réessayer dans quelques instants ou contacter notre support : {support_contact}."
        ),
        sources=[],
        degraded=True,
        source="error_handler",
        confidence=0.0,
    )
