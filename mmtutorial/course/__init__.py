"""The course machinery: what turns the package into a course.

* :mod:`.outline`: the learning path (:data:`COURSE`, one :class:`Lesson` per notebook);
* :mod:`.notebook`: every notebook's plumbing: parameters (:func:`setup`, :class:`Param`),
  smoke mode, recorded metrics;
* :mod:`.checks`: the exercises' self-checks, by notebook;
* :mod:`.viz`: the course's plots (attention heatmaps, the learning path);
* :mod:`.classroom`: student, solutions and self-test editions, exercise lists;
* :mod:`.site`: the executed course as a static web site.
"""

from .outline import COURSE, Lesson, available_lessons, find_notebook_dir

__all__ = ["COURSE", "Lesson", "available_lessons", "find_notebook_dir"]
