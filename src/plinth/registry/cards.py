"""Rendering a model card as Markdown or as a standalone HTML page (pure functions).

What people wrote is shown as text (escaped in HTML), never interpreted as markup, so a
card cannot carry a script into the page that shows it.
"""

from __future__ import annotations

from typing import Any

from plinth.registry.schemas import CARD_FIELDS, ModelCard

TITLES = {
    "purpose": "Purpose",
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "training_data": "Training data",
    "evaluation": "Evaluation",
    "limitations": "Limitations",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
}
MISSING = "_Not written yet._"


def sections(card: ModelCard) -> list[dict[str, Any]]:
    """The card's sections in order: each a title, the person-written text and the facts."""
    g = card.generated
    run = g.get("run") or {}
    facts: dict[str, list[tuple[str, str]]] = {
        "purpose": [("Description", g.get("description") or "—"), ("Owner", g.get("owner") or "—")],
        "training_data": [
            ("Datasets", ", ".join(g.get("datasets") or []) or "none recorded"),
            ("Feature services", ", ".join(g.get("features") or []) or "none recorded"),
            (
                "Source run",
                f"runs:/{run['id']} ({run.get('name')}, experiment {run.get('experiment')})" if run else "—",
            ),
            ("Code", ", ".join(f"{k}={v}" for k, v in (g.get("code") or {}).items()) or "not recorded"),
        ],
        "evaluation": [(k, _num(v)) for k, v in sorted((g.get("metrics") or {}).items())] or [("Metrics", "none")],
    }
    out = []
    for key in CARD_FIELDS:
        out.append({"key": key, "title": TITLES[key], "text": card.fields.get(key), "facts": facts.get(key, [])})
    return out


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def card_markdown(card: ModelCard) -> str:
    g = card.generated
    lines = [
        f"# Model card: {card.name} v{card.version}",
        "",
        f"`{card.ref}` · stage **{card.stage}** · flavor {g.get('flavor')}"
        + (f" · aliases {', '.join('@' + a for a in g.get('aliases') or [])}" if g.get("aliases") else ""),
        "",
    ]
    for section in sections(card):
        lines += [f"## {section['title']}", "", section["text"] or MISSING, ""]
        lines += [f"- **{label}:** {value}" for label, value in section["facts"]]
        if section["facts"]:
            lines.append("")
    lines += ["## Signature", "", f"Inputs: {g.get('signature_text')}", ""]
    if g.get("params"):
        lines += ["## Training parameters", "", "| param | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(g["params"].items())]
        lines.append("")
    approvals = g.get("approvals") or []
    lines += ["## Approvals", ""]
    if approvals:
        for a in approvals:
            who = (
                f", {a['status']} by {a['decided_by']} ({a.get('comment') or 'no comment'})"
                if a.get("decided_by")
                else ""
            )
            lines.append(f"- requested by {a['requested_by']}: {a['reason']}{who}")
    else:
        lines.append("None.")
    lines += ["", f"_Registered by {g.get('registered_by')} at {g.get('registered_at')} from `{g.get('source')}`._", ""]
    return "\n".join(lines)


def card_html(card: ModelCard) -> str:
    """A standalone HTML page (inline style only, no script)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("plinth.registry", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("registry/card_document.html").render(card=card, sections=sections(card), g=card.generated)
