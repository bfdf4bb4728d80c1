"""matplotlib's ``to_jshtml()`` animation player, made to work offline.

The player's template links Font Awesome 4.4 from a CDN for its button icons: offline (a notebook
opened on a train, the built site, a lecture hall without network) the buttons are blank, and a
page that fetches nothing is what the site promises. :func:`offline_player` swaps that link for a
small inline style sheet that draws the same icons as plain Unicode glyphs in the page's own font.
:meth:`~strucspars_viz.viz.animation.MatrixAnimation.to_jshtml` applies it to every animation of
the package, and the site build applies it to any other player found in a notebook's outputs.
"""
from __future__ import annotations

import re

__all__ = ["PLAYER_ICONS_CSS", "offline_player"]

#: the player's icon classes drawn with Unicode glyphs (no web font)
PLAYER_ICONS_CSS = """\
.anim-buttons .fa { font-style: normal; font-family: system-ui, "DejaVu Sans", sans-serif;
  display: inline-block; min-width: 1.2em; }
.anim-buttons .fa-minus::before { content: "\\2212"; }
.anim-buttons .fa-plus::before { content: "+"; }
.anim-buttons .fa-fast-backward::before { content: "|\\25C0\\25C0"; }
.anim-buttons .fa-step-backward::before { content: "|\\25C0"; }
.anim-buttons .fa-play::before { content: "\\25B6"; }
.anim-buttons .fa-pause::before { content: "\\275A\\275A"; }
.anim-buttons .fa-step-forward::before { content: "\\25B6|"; }
.anim-buttons .fa-fast-forward::before { content: "\\25B6\\25B6|"; }
.anim-buttons .fa-flip-horizontal { transform: scaleX(-1); }
"""

_CDN_LINK = re.compile(r"<link[^>]*font-awesome[^>]*>\s*", re.IGNORECASE)


def offline_player(html: str) -> tuple[str, int]:
    """``html`` with every Font Awesome ``<link>`` replaced by :data:`PLAYER_ICONS_CSS` inline.

    Returns the new HTML and the number of links replaced (0: ``html`` is returned unchanged).

    >>> offline_player('<link rel="stylesheet" href="https://cdn/font-awesome/4.4.0/x.css"><p>')[1]
    1
    >>> offline_player("<p>no player</p>")
    ('<p>no player</p>', 0)
    """
    style = f"<style>\n{PLAYER_ICONS_CSS}</style>\n"
    return _CDN_LINK.subn(lambda _: style, html)
