"""What every explorer shares: a live widget in JupyterLab, a static figure everywhere else.

An explorer draws one matplotlib figure from its current settings. In a kernel that a
person drives (JupyterLab, Jupyter Notebook, VS Code), displaying it shows the figure as
an image under a row of controls (ipywidgets): moving a control redraws the figure. Where
no one can move a slider (papermill, ``make refresh``, the tests, sweeps, nbgrader's
autograder) the runner sets :data:`STATIC_WIDGETS_ENV` and displaying it shows the figure
of its initial settings as a plain PNG, so the committed notebook, the course site and
GitHub show that figure instead of a dead widget. This module is the only place that
reads the switch.

The figure is a :class:`matplotlib.figure.Figure` that pyplot does not know about, so an
update never leaks a stray figure into the cell's output. It is drawn the way animations
are (blitting): axes, ticks and labels once, then on each update only the artists marked
``animated`` (bars, lines, images, titles) over a saved copy of the rest, which keeps an
update in the tens of milliseconds on a small CPU where a full redraw takes 0.1-0.3 s.
"""

from __future__ import annotations

import html
import io
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

__all__ = ["STATIC_WIDGETS_ENV", "static_widgets", "Explorer"]

#: Environment variable: ``1`` makes explorers display a static figure (headless runs).
STATIC_WIDGETS_ENV = "MMTUTORIAL_STATIC_WIDGETS"

#: Resolution of the explorers' figures: sharp enough to read, quick to redraw.
DPI = 80


def static_widgets() -> bool:
    """True where explorers show a static figure instead of a widget (``MMTUTORIAL_STATIC_WIDGETS=1``)."""
    return os.environ.get(STATIC_WIDGETS_ENV) == "1"


class Explorer:
    """An interactive figure: settings, controls that change them, and one redraw.

    Subclasses build the figure's axes and artists once in ``__init__`` (marking every
    artist that changes with ``animated=True``, and fixing axis limits so the ticks stay
    valid), set :attr:`state` (the settings, by name), and implement :meth:`draw` (update
    the artists from :attr:`state` and set :attr:`status`) and :meth:`make_controls` (the
    ipywidgets controls, each bound to a setting with :meth:`bind`). A subclass that
    changes something not animated (an axis limit, a tick label) calls
    :meth:`invalidate` so the next frame redraws everything.

    :meth:`set` changes settings and redraws; that is all a control does, so a test drives
    an explorer through its controls or through :meth:`set` alike.
    """

    #: One line shown under the figure in static mode.
    static_note = "A static picture of the first setting: run this notebook in JupyterLab to move the controls."

    def __init__(self, figsize: tuple[float, float]) -> None:
        self.figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
        FigureCanvasAgg(self.figure)  # a canvas of its own: pyplot never sees this figure
        self.state: dict[str, Any] = {}
        self.status = ""
        self.controls: dict[str, Any] = {}
        #: Seconds the last :meth:`refresh` took (the settings' computation and the new frame).
        self.last_update_seconds = 0.0
        self._background = None
        self._image = self._status = self._widget = None
        self._drawn = False

    # -- what a subclass provides ---------------------------------------------------

    def draw(self) -> None:  # pragma: no cover - abstract
        """Update the figure's artists from :attr:`state`; set :attr:`status`."""
        raise NotImplementedError

    def make_controls(self, widgets) -> list:  # pragma: no cover - abstract
        """The controls (``widgets`` is the ``ipywidgets`` module), bound with :meth:`bind`."""
        raise NotImplementedError

    def validate(self, name: str, value: Any) -> Any:
        """Check one setting (override to check values); return the value to store."""
        return value

    # -- settings and redrawing -----------------------------------------------------

    def set(self, **values: Any) -> None:
        """Change settings by name and redraw (what every control calls)."""
        unknown = sorted(set(values) - set(self.state))
        if unknown:
            raise KeyError(f"{type(self).__name__} has no setting {unknown}; its settings are {sorted(self.state)}")
        for name, value in values.items():
            self.state[name] = self.validate(name, value)
        self.refresh()

    def refresh(self) -> None:
        """Recompute, and when the widget is shown, send it the new frame and status line."""
        started = time.perf_counter()
        self.draw()
        self._drawn = True
        if self._image is not None:
            self._image.value = self.png()
            self._status.value = self._status_html()
        self.last_update_seconds = time.perf_counter() - started

    def invalidate(self) -> None:
        """Redraw everything on the next frame (after changing something not animated)."""
        self._background = None

    def _animated(self) -> list:
        """The visible animated artists, lowest ``zorder`` first (images, then what lies on them)."""
        found = [a for a in self.figure.findobj(lambda a: a.get_animated()) if a.get_visible()]
        return sorted(found, key=lambda a: a.get_zorder())

    def frame(self) -> np.ndarray:
        """The figure as an RGBA array ``(height, width, 4)``: the saved background with the
        animated artists drawn over it."""
        if not self._drawn:
            self.draw()
            self._drawn = True
        canvas = self.figure.canvas
        if self._background is None:
            for ax in self.figure.axes:  # an animated image would cover its axes' frame: draw the frame over it
                if any(image.get_animated() for image in ax.images):
                    for spine in ax.spines.values():
                        spine.set_animated(True)
            canvas.draw()  # everything but the animated artists (and the layout, the first time)
            self.figure.set_layout_engine("none")  # keep that layout: later frames only blit
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        canvas.restore_region(self._background)
        for artist in self._animated():
            self.figure.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())

    def png(self) -> bytes:
        """The current frame as PNG bytes."""
        buffer = io.BytesIO()
        PILImage.fromarray(self.frame()).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def bind(self, control, name: str, convert: Callable[[Any], Any] | None = None):
        """Make ``control`` set the setting ``name`` when its value changes; returns it."""

        def changed(change) -> None:
            self.set(**{name: convert(change["new"]) if convert else change["new"]})

        control.observe(changed, names="value")
        self.controls[name] = control
        return control

    def _status_html(self) -> str:
        return f"<span style='font-family: monospace'>{html.escape(self.status)}</span>"

    # -- display --------------------------------------------------------------------

    def widget(self):
        """The live widget: the controls, a status line and the figure (built once)."""
        if self._widget is None:
            import ipywidgets as widgets

            controls = self.make_controls(widgets)
            png = self.png()
            self._image = widgets.Image(value=png, format="png", layout=widgets.Layout(max_width="100%"))
            self._status = widgets.HTML(self._status_html())
            row = widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
            self._widget = widgets.VBox([row, self._status, self._image])
            self._widget.add_class("mmtutorial-explorer")
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import Image, display

        if static_widgets():
            display(Image(data=self.png(), format="png"))
            print(f"{self.status}\n({self.static_note})" if self.status else f"({self.static_note})")
        else:
            display(self.widget())

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.state.items() if isinstance(v, (int, float, str, bool)))
        return f"{type(self).__name__}({settings})"
