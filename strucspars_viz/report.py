"""A self-contained HTML report: figures as base64 PNG, animations as base64 GIF, plain tables.

No external resources (no scripts, fonts or stylesheets from the network): the file can be mailed,
opened from ``file://`` or archived as a CI artefact and it renders the same.

>>> html = render_report("t", [Section("s", table_html([{"a": 1}]))])
>>> "<table" in html and html.startswith("<!DOCTYPE html>")
True
"""
from __future__ import annotations

import base64
import html as _html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = ["Section", "figure_html", "gif_html", "image_html", "table_html", "render_report", "write_report",
           "notation_section", "PAPER_URL"]

#: the method's paper (Zhang, Zhao, Xiao, Cheng, Yang, UAI 2021, PMLR 161:440-450)
PAPER_URL = "https://arxiv.org/abs/2002.08127"


@dataclass
class Section:
    """One report section: a heading, optional intro text (plain, escaped) and raw HTML body parts."""

    title: str
    body: str | Sequence[str] = ""
    intro: str = ""
    anchor: str = field(default="")


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d2733;line-height:1.45}
header{background:#2e4057;color:white;padding:22px 36px}
header h1{margin:0;font-size:22px;font-weight:600} header p{margin:6px 0 0;opacity:.85;font-size:13px}
nav{padding:10px 36px;background:white;border-bottom:1px solid #e3e6ea;font-size:13px}
nav a{margin-right:16px;color:#00789a;text-decoration:none}
main{max-width:1180px;margin:0 auto;padding:8px 36px 40px}
section{background:white;border:1px solid #e3e6ea;border-radius:8px;margin:22px 0;padding:18px 24px}
section h2{margin:0 0 6px;font-size:18px;color:#2e4057}
section p.intro{margin:4px 0 14px;color:#4a5866;font-size:14px}
figure{margin:12px 0;text-align:center} figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
figcaption{font-size:12.5px;color:#5b6875;margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:10px 0;min-width:40%}
th,td{padding:4px 10px;border-bottom:1px solid #e9ecef;text-align:right}
th{background:#f1f4f7;color:#2e4057;font-weight:600} td:first-child,th:first-child{text-align:left}
tr:hover td{background:#fafbfc} pre{background:#f1f4f7;padding:10px;border-radius:6px;font-size:12px;overflow:auto}
.kv{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.kv div{background:#f1f4f7;border-radius:6px;padding:8px 14px;font-size:13px}
.kv b{display:block;font-size:18px;color:#2e4057}
footer{color:#8a96a3;font-size:12px;text-align:center;padding:20px}
"""


def image_html(data: bytes, mime: str, *, caption: str = "", alt: str = "", element_id: str | None = None,
               css_class: str = "") -> str:
    """An ``<img>`` with the bytes inlined as a base64 data URI, wrapped in a ``<figure>``."""
    uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    attrs = f' id="{_html.escape(element_id)}"' if element_id else ""
    attrs += f' class="{_html.escape(css_class)}"' if css_class else ""
    cap = f"<figcaption>{_html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{_html.escape(alt or caption)}"{attrs}>{cap}</figure>'


def figure_html(fig, *, caption: str = "", dpi: float = 100, element_id: str | None = None) -> str:
    """A matplotlib Figure embedded as base64 PNG."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return image_html(buf.getvalue(), "image/png", caption=caption, element_id=element_id, css_class="figure")


def gif_html(gif: bytes | str | Path, *, caption: str = "", element_id: str | None = None) -> str:
    """A GIF (bytes or a file path) embedded as base64; class ``animation``."""
    data = gif if isinstance(gif, bytes) else Path(gif).read_bytes()
    return image_html(data, "image/gif", caption=caption, element_id=element_id, css_class="animation")


def _cell(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy scalars
        v = v.item()
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return _html.escape(str(v))


def table_html(rows: Iterable[Mapping], columns: Sequence[str] | None = None, *, caption: str = "",
               element_id: str | None = None, column_help: Mapping[str, str] | None = None) -> str:
    """An HTML table from a list of dicts (columns: the given order, else the first row's keys).

    ``column_help`` gives a column's explanation, shown as the header's tooltip (``title``) and marked ``?``.
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    helps = dict(column_help or {})

    def th(c) -> str:
        if str(c) in helps:
            return (f'<th title="{_html.escape(helps[str(c)])}">{_html.escape(str(c))}'
                    '<sup style="color:#00789a">?</sup></th>')
        return f"<th>{_html.escape(str(c))}</th>"

    head = "".join(th(c) for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    attrs = f' id="{_html.escape(element_id)}"' if element_id else ""
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    return f"<table{attrs}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_html(items: Mapping[str, object]) -> str:
    """Key figures as a row of tiles."""
    return '<div class="kv">' + "".join(
        f"<div>{_html.escape(str(k))}<b>{_cell(v)}</b></div>" for k, v in items.items()) + "</div>"


_NOTATION = [
    ("W, S", "a conv layer's weight W has shape (C_out, C_in, k_h, k_w); its weight-norm matrix is "
             "S[i, j] = sum |W[i, j, :, :]| (L1 over the kernel), shape (C_out, C_in)."),
    ("P, Q", "permutations (index arrays) of the output and input channels; S' = S[P][:, Q] is S in that order "
             "(the learned channel shuffle)."),
    ("G, U_G", "G = 2^m groups; U_G is the 0/1 mask of the G diagonal blocks (C_out/G x C_in/G each). A grouped "
               "conv with G groups keeps exactly the weights inside those blocks."),
    ("f(G), keep", "f(G) = <S', U_G> / sum S', the fraction of the norm mass the G blocks keep; a layer gets the "
                   "largest G with f(G) >= keep (the paper's p)."),
    ("R, J, decay", "R is the hierarchical penalty: 1 on the coarsest off-diagonal blocks, multiplied by decay at "
                    "each finer level, 0 on the finest diagonal blocks; J = <S', R> is what the P/Q search "
                    "minimises, one exact assignment problem (an LP on the Birkhoff polytope) per half-step."),
    ("lambda", "strength of the structured L1 penalty sum R_g |W| added during training (lam * sign(W) * R_g "
               "added to the gradients, R_g un-permuted into the weight's own order)."),
    ("model sparsity", "fraction of the sparsified convs' parameters removed: 1 - sum_l n_l / G_l / sum_l n_l."),
    ("MACs", "multiply-accumulates (what the paper calls FLOPs)."),
]


def notation_section(anchor: str = "notation") -> Section:
    """A report section defining the symbols every other section uses, with the paper's link."""
    rows = "".join(f"<tr><td><b>{_html.escape(k)}</b></td><td style=\"text-align:left\">{_html.escape(v)}</td></tr>"
                   for k, v in _NOTATION)
    paper = (f'<p>Method: <a href="{PAPER_URL}">Zhang, Zhao, Xiao, Cheng, Yang, "Structured Sparsification with '
             'Joint Optimization of Group Convolution and Channel Shuffle", UAI 2021, PMLR 161:440-450 '
             f'(arXiv 2002.08127)</a>. The notebooks in <code>notebooks/</code> derive each quantity step by step.</p>')
    return Section("Notation and the paper", [paper, f'<table id="table-notation"><tbody>{rows}</tbody></table>'],
                   anchor=anchor)


def render_report(title: str, sections: Sequence[Section], *, subtitle: str = "") -> str:
    """The full HTML document."""
    parts, links = [], []
    for i, sec in enumerate(sections):
        anchor = sec.anchor or f"s{i + 1}"
        links.append(f'<a href="#{anchor}">{_html.escape(sec.title)}</a>')
        body = sec.body if isinstance(sec.body, str) else "\n".join(sec.body)
        intro = f'<p class="intro">{_html.escape(sec.intro)}</p>' if sec.intro else ""
        parts.append(f'<section id="{anchor}"><h2>{_html.escape(sec.title)}</h2>{intro}{body}</section>')
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{_html.escape(title)}</h1><p>{_html.escape(subtitle)}</p></header>"
        f"<nav>{''.join(links)}</nav><main>{''.join(parts)}</main>"
        f"<footer>strucspars-viz report, generated {stamp}. Self-contained: all images are embedded.</footer>"
        "</body></html>\n"
    )


def write_report(path: str | Path, title: str, sections: Sequence[Section], *, subtitle: str = "") -> Path:
    """Write :func:`render_report` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(title, sections, subtitle=subtitle), encoding="utf-8")
    return path
