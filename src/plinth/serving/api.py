"""REST routes of deployments, batch inference jobs and streaming workers: thin, each one service call."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from plinth.server.deps import CallerDep
from plinth.serving import jobs
from plinth.serving import schemas as s
from plinth.serving import service as svc
from plinth.serving import stream_workers as sw

router = APIRouter(tags=["serving"])


@router.post(s.CREATE.path, status_code=201)
def create_deployment(body: s.DeploymentCreate, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.create_deployment, **body.model_dump())


@router.get(s.LIST.path)
def list_deployments(caller: CallerDep) -> list[s.DeploymentInfo]:
    return caller.call(svc.list_deployments)


@router.get(s.GET.path)
def get_deployment(name: str, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.get_deployment, name=name)


@router.patch(s.UPDATE.path)
def update_deployment(name: str, body: s.DeploymentUpdate, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.update_deployment, name=name, **body.model_dump())


@router.delete(s.DELETE.path, status_code=204)
def delete_deployment(name: str, caller: CallerDep) -> Response:
    caller.call(svc.delete_deployment, name=name)
    return Response(status_code=204)


@router.get(s.INFERENCE_LOG.path)
def inference_log_location(name: str, caller: CallerDep) -> s.InferenceLogInfo:
    return caller.call(svc.inference_log_location, name=name)


@router.post(s.SUBMIT_JOB.path, status_code=202)
def submit_batch_job(body: s.BatchJobCreate, caller: CallerDep) -> s.BatchJobInfo:
    return jobs.submit_job(caller, body)


@router.get(s.LIST_JOBS.path)
def list_batch_jobs(
    caller: CallerDep, state: s.JobState | None = None, limit: int = Query(100, ge=1, le=jobs.MAX_LISTED)
) -> list[s.BatchJobInfo]:
    return caller.call(jobs.list_jobs, state=state, limit=limit)


@router.post(s.CLOSE_STALE_JOBS.path)
def close_stale_batch_jobs(caller: CallerDep) -> list[s.BatchJobInfo]:
    return caller.call(jobs.close_stale_jobs)


@router.get(s.GET_JOB.path)
def get_batch_job(id: str, caller: CallerDep) -> s.BatchJobInfo:  # noqa: A002 - the route's word
    return caller.call(jobs.get_job, id=id)


@router.post(s.REGISTER_WORKER.path, status_code=201)
def register_stream_worker(body: s.StreamWorkerRegister, caller: CallerDep) -> s.StreamWorkerInfo:
    return caller.call(sw.register_worker, **body.model_dump())


@router.patch(s.REPORT_WORKER.path)
def report_stream_worker(id: str, body: s.StreamWorkerReport, caller: CallerDep) -> s.StreamWorkerInfo:  # noqa: A002
    return caller.call(sw.report_worker, id=id, **body.model_dump())


@router.get(s.LIST_WORKERS.path)
def list_stream_workers(caller: CallerDep) -> list[s.StreamWorkerInfo]:
    return caller.call(sw.list_workers)


@router.get(s.GET_WORKER.path)
def get_stream_worker(id: str, caller: CallerDep) -> s.StreamWorkerInfo:  # noqa: A002
    return caller.call(sw.get_worker, id=id)
