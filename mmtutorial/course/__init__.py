"""The course machinery: what turns the package into a course.

* :mod:`.outline`: the learning path (:data:`COURSE`, one :class:`Lesson` per notebook);
* :mod:`.notebook`: every notebook's plumbing: parameters (:func:`setup`, :class:`Param`),
  smoke mode, recorded metrics;
* :mod:`.checks`: the exercises' self-checks, by notebook;
* :mod:`.viz`: the course's plots (attention heatmaps, the learning path);
* :mod:`.explorers`: interactive ipywidgets explorers (a static figure where no kernel runs);
* :mod:`.classroom`: student, solutions and self-test editions, exercise lists, solution leaks;
* :mod:`.nbgrader_edition`: the course as an nbgrader course directory;
* :mod:`.prose`: every measured number in the prose printed above it (the drift check);
* :mod:`.site`: the executed course as a static web site.
"""

from .outline import COURSE, Lesson, available_lessons, find_notebook_dir

__all__ = ["COURSE", "Lesson", "available_lessons", "find_notebook_dir"]
