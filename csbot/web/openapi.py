"""The public chat API, described: `/openapi.json` (OpenAPI 3.1) and its docs page `/api/docs`.

Only the customer's API is in the description: `POST /api/chat`, `POST /api/handoff`,
`POST /api/messages/{id}/rating` and `GET /api/conversations/{id}/messages`. The staff and admin pages, the logins, health and
readiness stay out of it (server.py includes them with `include_in_schema=False`). The docs page
is FastAPI's Swagger UI page with its scripts and styles served from the swagger-ui-bundle
package (`/api/docs/assets/`), so it fetches nothing from a CDN.

The models here only describe: the handlers in server.py read and check the bodies themselves,
with the error messages docs/api.md lists. This module owns what the API says it takes and gives.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

ASSETS = "/api/docs/assets"


class ChatRequest(BaseModel):
    conversation_id: str | None = Field(None, description="The id a previous reply returned; null starts a "
                                                            "conversation", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    message: str = Field(description="The customer's text (1 to max_message_chars characters)")
    identity: str | None = Field(None, description="Optional: a token the shop's server signed (HS256, "
                                                   "identity_secret) with sub, name, email, iat and exp")


class ChatReply(BaseModel):
    conversation_id: str = Field(description="Send it with the next message, and poll with it")
    reply: str | None = Field(description="The bot's words; null while a person owns the conversation")
    route: str = Field(description="template, answer, fallback, handoff or human")
    intent: str | None = None
    confidence: float | None = Field(None, description="The intent's calibrated probability")
    answer_id: int | None = Field(None, description="The curated answer given, if any")
    handoff: bool = Field(description="True when the conversation went to a person")
    message_id: int | None = Field(None, description="The bot's message; poll after it")
    model_version: str | None = None


class Message(BaseModel):
    id: int
    role: str = Field(description="customer, bot, staff or system")
    text: str = Field(description="As stored: show it as text, not HTML")
    created_at: str
    author: str | None = Field(None, description="The staff member, on a staff message")
    route: str | None = Field(None, description="How the bot chose it, on a bot message")


class Messages(BaseModel):
    conversation_id: str
    owner: str = Field(description="bot, or human while a person owns the conversation")
    messages: list[Message]
    after: int = Field(description="The cursor for the next poll: the last message's id")
    more: bool = Field(description="True when there were more new messages than one answer holds: ask again")


class Problem(BaseModel):
    error: str = Field(description="What was expected, what was found, and how to fix it")
    retry_after: int | None = Field(None, description="On 429: seconds to wait (also the Retry-After header)")


def errors(*codes: int) -> dict:
    """The error responses of a route, for its `responses=`.

    Example: errors(400, 429) -> {400: {"model": Problem, ...}, 429: {...}}
    """
    said = {400: "Bad input: the error says what was expected", 404: "No such conversation",
            401: "The identity token was refused (forged, expired, too long-lived, or none is taken)",
            403: "The conversation belongs to another verified customer",
            413: "The body is over the route's limit (256 KB for a message, 16 KB for a hand-off)", 429: "Too many requests: wait Retry-After seconds",
            500: "Something failed on our side; the message, if stored, is in the staff inbox"}
    return {code: {"model": Problem, "description": said[code]} for code in codes}


class HandoffRequest(BaseModel):
    conversation_id: str | None = Field(None, description="The conversation to hand over; null starts one",
                                        pattern=r"^[A-Za-z0-9_-]{1,64}$")
    identity: str | None = Field(None, description="Optional, as on /api/chat: staff then see who is waiting")


class RatingRequest(BaseModel):
    conversation_id: str = Field(description="The conversation the reply is in", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    rating: int = Field(description="1 (like), -1 (dislike) or 0 (none)", ge=-1, le=1)


class Rated(BaseModel):
    message_id: int
    rating: int


RATING_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": RatingRequest.model_json_schema()}}}}
HANDOFF_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": HandoffRequest.model_json_schema()}}}}
CHAT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


def install_docs(app: FastAPI, *, title: str) -> None:
    """Serve /openapi.json (FastAPI makes it from the routes in the schema) and /api/docs offline."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{title} · API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io
