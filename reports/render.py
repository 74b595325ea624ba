"""Rendering a report: the HTML page, the Markdown version, the Grafana annotation text, and the list page.

Templates live in ``reports/templates``. HTML templates (and the annotation text, which Grafana shows as sanitized
HTML) are autoescaped; the Markdown template is not, and escapes every value with the ``md`` filters instead.
Each template receives one typed context from :mod:`reports.context`.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from reports.context import (
    AnnotationContext,
    ReportListPage,
    ReportPage,
    build_annotation_context,
    build_report_page,
)
from reports.digest import Digest
from reports.grafana_links import GrafanaLinks
from reports.models import Report
from reports.text import fmt_duration, fmt_time, md_code_block, md_inline, md_text, md_url

# The HTTP headers of every rendered page (reports, the list, the digest, their error pages). The templates carry no
# JavaScript and the policy forbids scripts outright; forms (the list's filters, log out) may only post to this site.
# ``same-origin`` referrers keep a signed report URL from leaking to the runbook and Grafana links on the page, while
# our own forms still carry their Origin (``no-referrer`` would make it ``null`` and fail the CSRF check).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "private, no-store",
}
# Grafana stores annotation text in a TEXT column, but tooltips become unreadable long before any limit.
MAX_ANNOTATION_CHARS = 1_000


def _autoescape(name: str | None) -> bool:
    return bool(name) and not str(name).endswith(".md.j2")


@cache
def environment() -> Environment:
    """The one Jinja environment of the reports (templates are compiled once per process)."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["md"] = md_inline
    env.filters["md_text"] = md_text
    env.filters["md_url"] = md_url
    env.filters["md_code_block"] = md_code_block
    env.filters["duration"] = fmt_duration
    env.filters["utc"] = fmt_time
    return env


def render_page(page: ReportPage) -> str:
    """The HTML page of a prepared context."""
    return environment().get_template("report.html.j2").render(r=page)


def render_report_html(
    report: Report, *, link_query: str = "", now: datetime | None = None, grafana: GrafanaLinks | None = None
) -> str:
    """The HTML report page. ``link_query`` (``?exp=…&sig=…``) is appended to the page's JSON and Markdown links;
    ``grafana`` says where Grafana is, for the dashboard and Explore links."""
    return render_page(build_report_page(report, now=now, link_query=link_query, grafana=grafana))


def render_report_markdown(report: Report, *, report_url: str = "", now: datetime | None = None) -> str:
    """The Markdown version of a report (every untrusted value escaped; log text in fenced blocks)."""
    page = build_report_page(report, now=now, report_url=report_url)
    text = environment().get_template("report.md.j2").render(r=page)
    return text.strip() + "\n"


def render_annotation(ctx: AnnotationContext) -> str:
    return environment().get_template("annotation.txt.j2").render(ctx=ctx).strip()


def render_annotation_text(report: Report, link: str) -> str:
    """The short annotation text: alert, summary, top hypothesis, link; at most ``MAX_ANNOTATION_CHARS``."""
    summary_chars = 400
    while True:
        text = render_annotation(build_annotation_context(report, link, summary_chars=summary_chars))
        if len(text) <= MAX_ANNOTATION_CHARS or summary_chars <= 40:
            return text[:MAX_ANNOTATION_CHARS]
        summary_chars //= 2


def render_list_html(page: ReportListPage) -> str:
    """The HTML list of reports."""
    return environment().get_template("list.html.j2").render(page=page)


def render_error_html(status: int, title: str, message: str) -> str:
    """A minimal error page for browsers (the API answers JSON)."""
    return environment().get_template("error.html.j2").render(status=status, title=title, message=message)


# The period links on the digest page: (label, ``since`` value).
DIGEST_PERIODS = [("24 hours", "24h"), ("7 days", "7d"), ("30 days", "30d")]


def render_digest_html(digest: Digest, *, since_param: str = "7d") -> str:
    """The digest page; ``since_param`` is the period as asked, carried to its JSON and Markdown links."""
    template = environment().get_template("digest.html.j2")
    return template.render(d=digest, periods=DIGEST_PERIODS, since_param=since_param)


def render_digest_markdown(digest: Digest, *, base_url: str = "") -> str:
    """The digest as Markdown; report links are absolute under ``base_url`` (``PUBLIC_URL``)."""
    text = environment().get_template("digest.md.j2").render(d=digest, base_url=base_url.rstrip("/"))
    return text.strip() + "\n"
