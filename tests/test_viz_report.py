"""The HTML report writer: self-contained, escaped, with embedded images and tables."""
import base64
import re

from strucspars_viz import learn_permutations
from strucspars_viz import planted_matrix
from strucspars_viz.report import Section, figure_html, gif_html, kv_html, render_report, table_html, write_report
from strucspars_viz.viz import animate_permutation, gif_bytes, plot_norm_matrix


def test_report_embeds_everything(tmp_path):
    s, _, _ = planted_matrix(8, 8, 2, noise=0.03, seed=0)
    _, _, hist = learn_permutations(s, init="identity")
    gif = gif_bytes(animate_permutation(hist, s, max_frames=8))
    assert gif[:6] in (b"GIF87a", b"GIF89a")
    parts = [
        figure_html(plot_norm_matrix(s), caption="a <figure>"),
        gif_html(gif, caption="anim", element_id="anim-x"),
        table_html([{"layer": "l1", "G": 2, "f": 0.912345}, {"layer": "l<2>", "G": 4, "f": 1.0}],
                   element_id="tbl"),
        kv_html({"params": 272474}),
    ]
    path = write_report(tmp_path / "r" / "report.html", "T & T", [Section("one", parts, intro="x < y")])
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "T &amp; T" in html and "x &lt; y" in html
    assert "l&lt;2&gt;" in html and "0.9123" in html and "272,474" in html
    m = re.search(r'<img src="data:image/gif;base64,([^"]+)" alt="anim" id="anim-x" class="animation">', html)
    assert m and base64.b64decode(m.group(1)) == gif
    png = re.search(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(png.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert 'id="tbl"' in html and html.count("<tr>") == 3
    assert render_report("t", []).count("<section") == 0


def test_notation_section_defines_symbols_and_links_the_paper(tmp_path):
    from strucspars_viz.report import PAPER_URL, notation_section, render_report

    html = render_report("t", [notation_section()])
    assert f'href="{PAPER_URL}"' in html and "2002.08127" in PAPER_URL
    for symbol in ("P, Q", "G, U_G", "f(G), keep", "R, J, decay", "lambda", "MACs"):
        assert f"<b>{symbol}</b>" in html
    assert 'href="#notation"' in html


def test_table_column_help_becomes_header_tooltip():
    from strucspars_viz.report import table_html

    html = table_html([{"epoch": 1, "epoch time (s)": 2.5}], column_help={"epoch time (s)": "wall-clock seconds"})
    assert '<th title="wall-clock seconds">epoch time (s)' in html
    assert "<th>epoch</th>" in html
