"""The API's routes past health: workflows and executions, with their request and response models. Built on the
first request that needs them (app.py), not at import: a cold Lambda answering /healthz neither imports the
definition models nor builds these routes' validators."""

from __future__ import annotations

import contextlib
import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from .. import executions
from ..db.models import QUEUED, RUNNING, STATES, Execution, StepRun, Workflow
from ..queue import Queue
from ..workflows.definition import Definition, strict_json
from .limits import MAX_DEPTH, too_deep


def _shallow(value: Any, what: str) -> Any:
    if too_deep(value):
        raise ValueError(f"{what}: nested more than {MAX_DEPTH} levels of arrays and objects deep")
    return value


def _storable(key: str) -> bool:
    """Whether `key` can be compared with a stored one: PostgreSQL's text holds no NUL character, and its driver
    refuses to send one, so a path or query value with one names no row (IDs are UUIDs) and is answered as any
    unknown value is (SQLite would compare it and find nothing), instead of failing in the driver."""
    return "\x00" not in key


class WorkflowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,127}$")
    definition: Definition

    @model_validator(mode="before")
    @classmethod
    def _depth(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _shallow(data.get("definition"), "definition")
        return data


class WorkflowOut(BaseModel):
    id: str
    name: str
    version: int
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ExecutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] = Field(default_factory=dict)

    @field_validator("input", mode="before")
    @classmethod
    def _depth(cls, value: Any) -> Any:
        return _shallow(value, "input")

    @field_validator("input")
    @classmethod
    def _strict(cls, value: dict[str, Any]) -> dict[str, Any]:
        strict_json(value, "input")
        return value


class StepOut(BaseModel):
    step: str
    position: int
    status: str
    output: Any = None
    error: str | None = None


class ExecutionOut(BaseModel):
    id: str
    workflow_id: str
    workflow_version: int
    state: str
    input: dict[str, Any]
    output: Any = None
    error: str | None = None
    attempts: int
    created_at: datetime
    updated_at: datetime
    steps: list[StepOut] = Field(default_factory=list)


class Page(BaseModel):
    items: list[Any]
    total: int
    limit: int
    offset: int


def _workflow(w: Workflow) -> WorkflowOut:
    return WorkflowOut(id=w.id, name=w.name, version=w.version, definition=w.definition, created_at=w.created_at,
                       updated_at=w.updated_at)


def _execution(e: Execution, steps: list[StepRun] | None = None) -> ExecutionOut:
    return ExecutionOut(id=e.id, workflow_id=e.workflow_id, workflow_version=e.workflow_version, state=e.state,
                        input=e.input, output=e.output, error=e.error, attempts=e.attempts,
                        created_at=e.created_at, updated_at=e.updated_at,
                        steps=[StepOut(step=s.step, position=s.position, status=s.status, output=s.output,
                                       error=s.error) for s in sorted(steps or [], key=lambda s: s.position)])


def authorized(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = (authorization or "").removeprefix("Bearer ").encode()
    # Compare against every key, in constant time, so timing tells nothing about any of them.
    matched = False
    for key in request.app.state.api_keys:
        matched |= hmac.compare_digest(token, key)
    if not authorization or not authorization.startswith("Bearer ") or not matched:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer API key is required",
                            headers={"WWW-Authenticate": "Bearer"})


def router(factory: sessionmaker[Session], outbox: Queue) -> APIRouter:
    """The authenticated routes (the caller includes them under the base path).

    Each route opens its sessions in its own body, one at a time, and closes each before the next: a session
    given by a `yield` dependency would hold its connection until FastAPI's teardown, which runs in the thread
    pool after the route. Under load that deadlocked (issue 17, bench/load_api.py at 100 requests/s): every
    pool thread held one connection while waiting for a second (a POST's lookup session, then
    executions.create's), or waited for a thread to run the teardown that would give one back, until the
    pool's 30 s timeout."""
    api = APIRouter(dependencies=[Depends(authorized)])

    def commit_or_conflict(session: Session, name: str) -> None:
        try:
            session.commit()
        except IntegrityError:  # the unique name
            session.rollback()
            raise HTTPException(409, f"a workflow named {name!r} exists") from None
        except StaleDataError:  # the version read was changed meanwhile by another request
            session.rollback()
            raise HTTPException(409, "the workflow was changed by another request meanwhile; "
                                     "read it again and retry") from None

    @api.post("/workflows", status_code=201, response_model=WorkflowOut, tags=["workflows"],
              responses={409: {"description": "name taken"}})
    def create_workflow(body: WorkflowIn) -> WorkflowOut:
        workflow = Workflow(name=body.name, version=1, definition=body.definition.model_dump(mode="json"))
        with factory() as session:
            session.add(workflow)
            commit_or_conflict(session, body.name)
        return _workflow(workflow)

    @api.get("/workflows", response_model=Page, tags=["workflows"])
    def list_workflows(limit: Annotated[int, Query(ge=1, le=100)] = 20,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page:
        with factory() as session:
            total = session.scalar(select(func.count()).select_from(Workflow)) or 0
            rows = session.scalars(select(Workflow).order_by(Workflow.name).limit(limit).offset(offset))
            return Page(items=[_workflow(w) for w in rows], total=total, limit=limit, offset=offset)

    def _get_workflow(session: Session, workflow_id: str) -> Workflow:
        workflow = session.get(Workflow, workflow_id) if _storable(workflow_id) else None
        if workflow is None:
            raise HTTPException(404, "no such workflow")
        return workflow

    @api.get("/workflows/{workflow_id}", response_model=WorkflowOut, tags=["workflows"],
             responses={404: {"description": "not found"}})
    def get_workflow(workflow_id: str) -> WorkflowOut:
        with factory() as session:
            return _workflow(_get_workflow(session, workflow_id))

    @api.put("/workflows/{workflow_id}", response_model=WorkflowOut, tags=["workflows"],
             responses={404: {"description": "not found"},
                        409: {"description": "name taken, or changed concurrently"}})
    def update_workflow(workflow_id: str, body: WorkflowIn) -> WorkflowOut:
        with factory() as session:
            workflow = _get_workflow(session, workflow_id)
            # The version is the mapper's: the UPDATE is conditional on the version read, and sets the next.
            workflow.name, workflow.definition = body.name, body.definition.model_dump(mode="json")
            commit_or_conflict(session, body.name)
        return _workflow(workflow)

    @api.delete("/workflows/{workflow_id}", status_code=204, tags=["workflows"],
                responses={404: {"description": "not found"},
                           409: {"description": "the workflow has queued or running executions"}})
    def delete_workflow(workflow_id: str) -> Response:
        # Deleting cascades to the workflow's executions, so it is refused while one is unfinished. The row
        # lock (PostgreSQL) waits for, and then blocks, executions being inserted for it (their foreign key
        # check locks the row too); the one conditional DELETE leaves no gap between the check and the delete.
        with factory() as session:
            _get_workflow(session, workflow_id)
            session.execute(select(Workflow.id).where(Workflow.id == workflow_id).with_for_update())
            unfinished = (select(Execution.id).where(Execution.workflow_id == workflow_id,
                                                     Execution.state.in_([QUEUED, RUNNING])).exists())
            deleted = session.execute(delete(Workflow).where(Workflow.id == workflow_id, ~unfinished)
                                      .execution_options(synchronize_session=False))
            session.commit()
        if deleted.rowcount != 1:  # type: ignore[attr-defined]
            raise HTTPException(409, "the workflow has queued or running executions; delete it when they "
                                     "have finished")
        return Response(status_code=204)

    @api.post("/workflows/{workflow_id}/executions", status_code=202, response_model=ExecutionOut,
              tags=["executions"], responses={404: {"description": "not found"},
                                              422: {"description": "Idempotency-Key reused with another body"}})
    def start(workflow_id: str, body: ExecutionIn,
              idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> ExecutionOut:
        with factory() as session:  # closed before executions.create takes a connection of its own
            workflow = _get_workflow(session, workflow_id)
        if idempotency_key is not None and not _storable(idempotency_key):
            raise HTTPException(422, "the Idempotency-Key may not contain the NUL character")
        key = f"api:{workflow_id}:{idempotency_key}" if idempotency_key else None
        try:
            execution, created = executions.create(factory, workflow, body.input, key)
        except executions.KeyReused as exc:
            raise HTTPException(422, str(exc)) from None
        if created or execution.enqueued_at is None:
            # Recorded but not sent (queue unreachable): the sweeper sends it; the client still gets its ID.
            with contextlib.suppress(Exception):
                executions.enqueue(factory, outbox, execution.id)
        return _execution(execution)

    @api.get("/executions/{execution_id}", response_model=ExecutionOut, tags=["executions"],
             responses={404: {"description": "not found"}})
    def get_execution(execution_id: str) -> ExecutionOut:
        with factory() as session:
            execution = session.get(Execution, execution_id) if _storable(execution_id) else None
            if execution is None:
                raise HTTPException(404, "no such execution")
            steps = list(session.scalars(select(StepRun).where(StepRun.execution_id == execution_id)))
            return _execution(execution, steps)

    @api.get("/executions", response_model=Page, tags=["executions"])
    def list_executions(workflow_id: str | None = None,
                        state: Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$")] = None,
                        limit: Annotated[int, Query(ge=1, le=100)] = 20,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page:
        query = select(Execution)
        if workflow_id and not _storable(workflow_id):
            return Page(items=[], total=0, limit=limit, offset=offset)  # no workflow has that ID
        if workflow_id:
            query = query.where(Execution.workflow_id == workflow_id)
        if state:
            query = query.where(Execution.state == state)
        with factory() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(Execution.created_at.desc(), Execution.id)
                                   .limit(limit).offset(offset))
            return Page(items=[_execution(e) for e in rows], total=total, limit=limit, offset=offset)

    return api
