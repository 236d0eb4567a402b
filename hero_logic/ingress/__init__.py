"""The ingress door: resume links with approval pages, and inbound webhooks (CONTRACT.md §11)."""

from ._app import IngressApp as IngressApp
from ._serve import parse_webhook_bind as parse_webhook_bind
from ._serve import serve_ingress as serve_ingress
