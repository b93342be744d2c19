"""The registry step of ``plinth demo``: train a scikit-learn model on the wine data inside a
run (reading the dataset version the data step made, so lineage reaches the data), log it,
register it, have carol approve it for production, alias it ``champion``, load it by that
alias and predict, then convert it to ONNX as a checked sibling."""

from __future__ import annotations

from typing import Any

MODEL = "wine-classifier"


def _training_data(state: Any, run_id: str) -> tuple[Any, Any, str]:
    """The wine data from the dataset version (lineage recorded), or scikit-learn's copy."""
    import plinth

    ref = state.facts.get("dataset")
    if ref:
        try:
            frame = plinth.data.read(ref, run_id=run_id, project=state.project).to_pandas()
            return frame.drop(columns=["sample_id", "target"]), frame["target"], ref
        except Exception as exc:  # the data area is optional for this step
            state.echo(f"  (dataset {ref} not readable: {exc}; using scikit-learn's wine data)")
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True)
    return frame.data, frame.target, "sklearn.datasets.load_wine"


def _as_user(state: Any, name: str) -> Any:
    """A caller acting as ``name`` on the embedded platform (what her token would give her)."""
    from sqlalchemy import select

    from plinth.core.platform import local_platform
    from plinth.governance.service import actor_for
    from plinth.governance.tables import User

    platform = local_platform()
    with platform.context() as ctx:
        user = ctx.session.execute(select(User).where(User.name == name)).scalar_one()
        actor = actor_for(ctx.session, user)
    return platform.caller(actor, state.project)


def run_step(state: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import plinth
    from plinth.registry import stages

    project = state.project
    with plinth.start_run(name="wine-logreg", experiment="wine-demo", project=project, system_metrics=False) as run:
        X, y, source = _training_data(state, run.id)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7, stratify=y)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X_train, y_train)
        run.log_params({"model": "logistic_regression", "C": 0.5, "data": source})
        run.log_metrics({"accuracy": float(model.score(X_test, y_test))})
        if source.startswith("datasets:/"):
            run.set_tags({"training_data": source})
        info = plinth.models.log_model(model, "model", input_example=X_train.head(5), registered_model_name=MODEL)
    version = info.registered_version.version
    state.echo(f"  logged {info.uri} ({info.flavor}, skops format), registered as models:/{MODEL}/{version}")
    request = plinth.registry.request_approval(
        MODEL, version, reason="accuracy on held-out wines is good enough for the pilot", project=project
    )
    try:
        plinth.registry.approve(request.id, project=project)
    except plinth.PermissionDenied as exc:
        state.echo(f"  self-approval refused: {exc.message}")
    _as_user(state, "carol").call(stages.approve, request_id=request.id, comment="reviewed the card")
    plinth.registry.set_alias(MODEL, "champion", version, project=project)
    plinth.registry.update_card(
        MODEL,
        {
            "intended_use": "Demo: tell the three wine cultivars apart from chemical analysis.",
            "limitations": "178 wines from one region; not for any real decision.",
        },
        project=project,
    )
    detail = plinth.registry.get_version(MODEL, version, project=project)
    state.echo(
        f"  approved by carol: v{version} is {detail.stage}; @champion -> v{version}; "
        f"lineage: run {detail.lineage['run']['id']}, data {detail.lineage.get('datasets') or source}"
    )
    champion = plinth.models.load(f"models:/{MODEL}@champion", project=project)
    predictions = champion.predict(X_test.head(5))
    state.echo(f"  models:/{MODEL}@champion predicts {predictions.tolist()} for 5 held-out wines")
    try:
        converted = plinth.models.convert(f"models:/{MODEL}@champion", to="onnx", project=project)
        state.echo(
            f"  converted to ONNX as v{converted.registered.version}: "
            f"label agreement {converted.check.get('label_agreement')}, check passed {converted.check['passed']}"
        )
    except plinth.InvalidInput as exc:  # the onnx extra is not installed
        state.echo(f"  ONNX conversion skipped: {exc.message}")
    state.echo(f"  model card: plinth models card {MODEL}@champion --format md")
    state.facts["model"] = f"models:/{MODEL}@champion"
