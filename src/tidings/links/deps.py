"""The link signer of the running app, as a route dependency (set up by `tidings.app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tidings.links.tokens import TokenSigner


def get_signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


SignerDep = Annotated[TokenSigner, Depends(get_signer)]
