"""The configuration GUI's API: list, read, check, save, create (template or character card) and delete profiles.

Everyone signed in may read profiles (they hold names of environment variables, never secrets); only admins change
them. A rejected save answers 422 with every problem by field, for the page to show next to the field.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from host.admin import profile_editor as editor
from host.admin.auth import Admin, Viewer
from host.admin.context import AdminContext
from host.admin.trials import NoBrainAnsweredError, TrialBusyError, TrialError
from host.events import MAX_PLAYER_TEXT_CHARS
from host.profiles.loader import SERVER_FILE, load_all, npc_files
from host.profiles.problems import ProfileError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/profiles", tags=["profiles"])

MAX_CARD_BYTES = 8 * 1024 * 1024


class FileSummary(BaseModel):
    name: str
    kind: str
    problems: list[editor.FieldProblem]


class FolderSummary(BaseModel):
    folder: str
    server: str | None
    files: list[FileSummary]


class ProfileView(BaseModel):
    folder: str
    name: str
    text: str
    fields: list[editor.FormField]


class Edit(BaseModel):
    """Either form values by field path, or the whole file as TOML text."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any] | None = None
    text: str | None = Field(None, max_length=editor.MAX_PROFILE_BYTES)

    @model_validator(mode="after")
    def _one(self) -> Edit:
        if (self.values is None) == (self.text is None):
            raise ValueError("send either values or text")
        return self


class CheckResult(BaseModel):
    problems: list[editor.FieldProblem]


class TrialRequest(Edit):
    """An unsaved edit of an NPC file (values or text, as for a save) and the line to try against it."""

    line: str = Field(min_length=1, max_length=MAX_PLAYER_TEXT_CHARS)
    player: str = Field("Traveler", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_ ]+$")


class TrialAnswer(BaseModel):
    npc: str
    reply: str
    dropped: list[str]
    error: str | None


class NewNpc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str = Field(min_length=1, max_length=64)


def _root(request: Request) -> Path:
    return AdminContext.of(request).services.settings.profiles_dir


def _file(request: Request, folder: str, name: str) -> editor.ProfileFile:
    try:
        file = editor.profile_file(_root(request), folder, name)
    except ProfileError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None
    if not file.server_dir.is_dir():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no server folder {folder!r}")
    return file


def _rejected(exc: editor.EditRejectedError) -> HTTPException:
    problems = [p.model_dump() for p in exc.field_problems]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, {"message": exc.message, "problems": problems})


async def _new_text(file: editor.ProfileFile, edit: Edit) -> str:
    if edit.text is not None:
        return edit.text
    old = await asyncio.to_thread(file.path.read_text, encoding="utf-8")
    return editor.apply_values(old, edit.values or {})


async def _reloaded(request: Request) -> None:
    # The watcher of every process picks the change up; this process's view need not wait for it.
    await AdminContext.of(request).services.registry.reload()


@router.get("", response_model=list[FolderSummary], summary="Every server folder and profile file, with problems")
async def list_profiles(request: Request, _: Viewer) -> list[FolderSummary]:
    loads = await asyncio.to_thread(load_all, _root(request))
    folders = []
    for load in loads:
        names = [SERVER_FILE, *(path.name for path in npc_files(load.directory))]
        files = [
            FileSummary(
                name=name,
                kind="server" if name == SERVER_FILE else "npc",
                problems=[
                    editor.FieldProblem(field=p.field, line=p.line, message=p.message)
                    for p in load.problems
                    if p.path.name == name
                ],
            )
            for name in names
        ]
        server = load.server.name if load.server else None
        folders.append(FolderSummary(folder=load.directory.name, server=server, files=files))
    return folders


@router.get("/{folder}/{name}", response_model=ProfileView, summary="One profile file as text and form fields")
async def read_profile(folder: str, name: str, request: Request, _: Viewer) -> ProfileView:
    file = _file(request, folder, name)
    try:
        text = await asyncio.to_thread(file.path.read_text, encoding="utf-8")
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{folder}/{name} does not exist") from None
    try:
        fields = editor.form_fields(text)
    except Exception:  # a file broken by hand has no form; its text is still editable
        fields = []
    return ProfileView(folder=folder, name=name, text=text, fields=fields)


@router.post("/{folder}/{name}/check", response_model=CheckResult, summary="Check an edit without saving it")
async def check_profile(folder: str, name: str, edit: Edit, request: Request, _: Admin) -> CheckResult:
    file = _file(request, folder, name)
    try:
        text = await _new_text(file, edit)
    except editor.EditRejectedError as exc:
        return CheckResult(problems=exc.field_problems)
    return CheckResult(problems=await asyncio.to_thread(editor.check, file, text))


@router.post("/{folder}/{name}/try", response_model=TrialAnswer, summary="Try a line against an unsaved edit of an NPC")
async def try_line(folder: str, name: str, trial: TrialRequest, request: Request, session: Admin) -> TrialAnswer:
    file = _file(request, folder, name)
    try:
        text = await _new_text(file, trial)
        draft = await asyncio.to_thread(editor.draft_npc, file, text)
    except editor.EditRejectedError as exc:
        raise _rejected(exc) from None
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{folder}/{name} does not exist") from None
    desk = AdminContext.of(request).trials
    if desk is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this process does not run the admin role")
    try:
        reply = await desk.try_line(draft.server, draft.npc, trial.player, trial.line, session.user)
    except TrialBusyError as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, exc.message) from None
    except NoBrainAnsweredError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, exc.message) from None
    except TrialError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
    return TrialAnswer(npc=reply.npc, reply=reply.reply, dropped=reply.dropped, error=reply.error)


@router.put("/{folder}/{name}", response_model=CheckResult, summary="Save a profile (checked, atomic, hot-reloaded)")
async def save_profile(folder: str, name: str, edit: Edit, request: Request, session: Admin) -> CheckResult:
    file = _file(request, folder, name)
    if not file.path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{folder}/{name} does not exist")
    try:
        text = await _new_text(file, edit)
        await asyncio.to_thread(editor.save, file, text)
    except editor.EditRejectedError as exc:
        raise _rejected(exc) from None
    log.info("%s saved profile %s/%s", session.user, folder, name)
    await _reloaded(request)
    return CheckResult(problems=[])


@router.post(
    "/{folder}", status_code=status.HTTP_201_CREATED, response_model=ProfileView, summary="New NPC from the template"
)
async def create_npc(folder: str, body: NewNpc, request: Request, session: Admin) -> ProfileView:
    file = _file(request, folder, f"{body.id}.toml")
    try:
        await asyncio.to_thread(editor.create_from_template, file, body.id, body.name)
    except editor.EditRejectedError as exc:
        raise _rejected(exc) from None
    except ProfileError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
    log.info("%s created NPC %s in %s", session.user, body.id, folder)
    await _reloaded(request)
    return await read_profile(folder, file.name, request, session)


@router.post(
    "/{folder}/card",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfileView,
    summary="New NPC from a SillyTavern card",
)
async def import_card(
    folder: str,
    request: Request,
    card: Annotated[UploadFile, File(description="a character card, .png or .json")],
    session: Admin,
    npc_id: Annotated[str | None, Form(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = None,
) -> ProfileView:
    server_dir = _file(request, folder, SERVER_FILE).server_dir
    data = await card.read(MAX_CARD_BYTES + 1)
    if len(data) > MAX_CARD_BYTES:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"a card may be {MAX_CARD_BYTES >> 20} MiB at most"
        )
    suffix = ".png" if (card.filename or "").lower().endswith(".png") else ".json"
    with tempfile.TemporaryDirectory(prefix="npc-host-upload-") as scratch:
        upload = Path(scratch) / f"card{suffix}"
        upload.write_bytes(data)
        try:
            path = await asyncio.to_thread(editor.create_from_card, server_dir, upload, npc_id)
        except editor.EditRejectedError as exc:
            raise _rejected(exc) from None
        except ProfileError as exc:
            # The card's own path is a scratch file: name the upload instead.
            message = exc.message.replace(str(upload), card.filename or "the card")
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, message) from None
    log.info("%s imported a card as %s/%s", session.user, folder, path.name)
    await _reloaded(request)
    return await read_profile(folder, path.name, request, session)


@router.delete("/{folder}/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an NPC profile")
async def delete_npc(folder: str, name: str, request: Request, session: Admin) -> None:
    file = _file(request, folder, name)
    if name == SERVER_FILE:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the server's own file is not deleted from the page")
    try:
        await asyncio.to_thread(file.path.unlink)
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{folder}/{name} does not exist") from None
    log.info("%s deleted profile %s/%s", session.user, folder, name)
    await _reloaded(request)
