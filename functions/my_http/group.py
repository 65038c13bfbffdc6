"""HTTP: group subscriptions on My page (S10; manual 6.15): the members of a group
subscription, invitations by e-mail within the plan's seats, removal, and accepting an
invitation with its code. The group's holder or an ADMIN member may invite and remove;
anyone else gets 404 (``self_service.authorize``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import BaseModel, Field

from functions.http import Call, Endpoint, endpoint
from functions.salesposter_http.guard import CODE_RATE, per_login
from functions.validation import Body
from shared.domain.identity import Role
from shared.service import groups

from . import bp
from .personal import CodeIn, Email, language

TAG = "My page: group subscriptions"
INVITE_RATE = "30/900"  # invitations one login sends (each mails a code)
INVITE_STATUSES = {422: "not a group subscription, all seats taken, or a member already",
                   429: "too many invitations sent by this login (Retry-After)"}
ACCEPT_STATUSES = {422: "the code is wrong, used or expired, or the invitation was withdrawn",
                   429: "too many codes tried by this login (Retry-After)"}
GROUP = "my/{tenant}/subscribers/{subscriber_no}/subscriptions/{subscription_id}/members"


class InviteIn(Body):
    email: Email
    role: Literal["admin", "user"] = "user"


class AcceptIn(CodeIn):
    email: Annotated[Email | None, Field(description="the address the invitation went to (default: the login's)")
                     ] = None


class SeatOut(BaseModel):
    id: str = Field(description="the member's link key or the invitation's id: DELETE .../members/{id}")
    kind: Literal["member", "invitation"]
    email: str
    role: Literal["admin", "user"]
    since: date
    expires: date | None = Field(description="an invitation's last day to be accepted; null for a member")


class MembersOut(BaseModel):
    seats: int
    used: int
    members: list[SeatOut]


class AcceptedOut(BaseModel):
    subscriber: int
    subscription_id: str
    role: Literal["admin", "user"]


@endpoint(bp, Endpoint("my_group_members", GROUP, ["GET"], "The seats of a group subscription: members and open "
                       "invitations", TAG, response=MembersOut, subscriber=True))
def get_members(call: Call) -> Any:
    return groups.members(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"])


@endpoint(bp, Endpoint("my_group_invite", GROUP, ["POST"], "Invite an e-mail address to a seat (within the plan's "
                       "seats); the code goes to the invitee", TAG, body=InviteIn, response=SeatOut, status=201,
                       subscriber=True, statuses=INVITE_STATUSES))
def post_member(call: Call) -> Any:
    refused = per_login(call, "ABONNO_INVITE_RATE_LIMIT", INVITE_RATE, "invitation")
    if refused is not None:
        return refused
    b: InviteIn = call.body
    return groups.invite(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"], str(b.email),
                         Role(b.role), language(call.request))


@endpoint(bp, Endpoint("my_group_remove", GROUP + "/{member}", ["DELETE"], "Remove a member or withdraw an "
                       "invitation (by the id the members list gives)", TAG, status=204, subscriber=True))
def delete_member(call: Call) -> Any:
    groups.remove(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"],
                  call.route["member"])
    return func.HttpResponse(status_code=204)


@endpoint(bp, Endpoint("my_invitation_accept", "my/{tenant}/invitations/accept", ["POST"], "Accept an invitation "
                       "to a group subscription with the code it sent", TAG, body=AcceptIn, response=AcceptedOut,
                       subscriber=True, statuses=ACCEPT_STATUSES))
def post_accept(call: Call) -> Any:
    refused = per_login(call, "ABONNO_CODE_RATE_LIMIT", CODE_RATE, "code")
    if refused is not None:
        return refused
    b: AcceptIn = call.body
    return groups.accept(call.ctx, call.me, b.code, str(b.email) if b.email else None)
