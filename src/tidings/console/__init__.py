"""The operator console: server-rendered pages (Jinja2) with htmx, at `/`.

An entry point like `tidings.api`: its routes parse a form or a query, call the same
services as the API routes in one transaction, and render a template. See
docs/console.md ("how to add a page").

    deps.py      who is looking (`Viewer`), role checks, the CSRF guard
    routing.py   the route class: failures rendered as the error page, security headers
    pages.py     rendering: templates, flash messages, redirects
    nav.py       the navigation every page shows
    static.py    /static, vendored (htmx) and hand-written (CSS, console.js) assets
    routes/      one module per page
"""
