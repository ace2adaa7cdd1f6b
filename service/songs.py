"""Songs: the smallest resource, a name and an artist."""

from fastapi import APIRouter, status
from pydantic import Field
from sqlalchemy import select

from service.deps import TenantSession
from service.models import TEXT_MAX, Song
from service.paging import keyset_page
from service.schemas import TENANT_PROBLEMS, Cursor, Output, PageLimit, StrictInput


class SongIn(StrictInput):
    name: str = Field(min_length=1, max_length=TEXT_MAX, examples=["So What"])
    artist: str = Field(min_length=1, max_length=TEXT_MAX, examples=["Miles Davis"])


class SongOut(Output):
    id: int
    name: str
    artist: str


class SongPage(Output):
    items: list[SongOut]
    next_cursor: str | None


router = APIRouter(prefix="/songs", tags=["songs"], responses=TENANT_PROBLEMS)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SongOut)
async def create_song(body: SongIn, session: TenantSession) -> Song:
    song = Song(name=body.name, artist=body.artist)
    session.add(song)
    await session.flush()
    return song


@router.get("", response_model=SongPage)
async def list_songs(
    session: TenantSession, limit: PageLimit = 20, cursor: Cursor = None
) -> SongPage:
    songs, next_cursor = await keyset_page(session, select(Song), Song.id, limit, cursor)
    return SongPage(items=[SongOut.model_validate(s) for s in songs], next_cursor=next_cursor)
