"""The status bar's view of background work: the newest running task, its progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from desktop.background.tasks import Task, TaskRunner


class TaskStatusWidget(QWidget):
    """The newest running task, its progress and a Cancel button; hidden while nothing runs."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks: dict[int, Task] = {}
        self.label = QLabel(self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setObjectName("cancelTaskButton")
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel this background task")
        self.cancel_button.clicked.connect(self.cancel_current)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.cancel_button)
        runner.task_started.connect(self._on_task_changed)
        runner.task_progress.connect(self._on_task_changed)
        runner.task_finished.connect(self._on_task_ended)
        runner.task_failed.connect(self._on_task_failed)
        self.hide()

    def current_task(self) -> Task | None:
        return next(reversed(self._tasks.values()), None)

    def cancel_current(self) -> None:
        task = self.current_task()
        if task is not None:
            task.cancel()
            self.cancel_button.setEnabled(False)

    def _on_task_changed(self, task: Task) -> None:
        if task.is_active and not task.quiet:
            self._tasks[task.id] = task
        self._refresh()

    def _on_task_ended(self, task: Task) -> None:
        self._tasks.pop(task.id, None)
        self._refresh()

    def _on_task_failed(self, task: Task, _exc: object, _traceback_text: str) -> None:
        self._on_task_ended(task)

    def _refresh(self) -> None:
        task = self.current_task()
        if task is None:
            self.hide()
            return
        text = task.title
        progress = task.progress
        if progress is not None and progress.message:
            text += f": {progress.message}"
        if len(self._tasks) > 1:
            text += f" (+{len(self._tasks) - 1} more)"
        self.label.setText(text)
        if progress is not None and progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(min(progress.done, progress.total))
        else:
            self.progress_bar.setRange(0, 0)  # busy indicator: the task does not know its size
        self.cancel_button.setEnabled(not task.cancel_requested)
        self.show()
