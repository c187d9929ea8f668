#include "run_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>

#include "run_controller.h"
#include "spec_model.h"

namespace lethe::ui {

RunPanel::RunPanel(RunController* controller, SpecModel* spec, QWidget* parent) : QWidget(parent), c_(controller), spec_(spec) {
  auto* root = new QVBoxLayout(this);
  auto* buttons = new QHBoxLayout;
  start_ = new QPushButton(tr("Start"), this);
  start_->setObjectName("run_start");
  start_->setShortcut(QKeySequence("Ctrl+R"));
  start_->setToolTip(tr("Run the spec (Ctrl+R)"));
  pause_ = new QPushButton(tr("Pause"), this);
  pause_->setObjectName("run_pause");
  pause_->setCheckable(true);
  pause_->setEnabled(false);
  stop_ = new QPushButton(tr("Stop"), this);
  stop_->setObjectName("run_stop");
  stop_->setEnabled(false);
  buttons->addWidget(start_);
  buttons->addWidget(pause_);
  buttons->addWidget(stop_);
  buttons->addStretch(1);
  root->addLayout(buttons);
  bar_ = new QProgressBar(this);
  bar_->setObjectName("run_progress");
  bar_->setRange(0, 1);
  bar_->setValue(0);
  bar_->setFormat(tr("idle"));
  root->addWidget(bar_);
  phase_ = new QLabel(tr("No run yet."), this);
  phase_->setObjectName("run_phase");
  root->addWidget(phase_);
  status_ = new QLabel(this);
  status_->setObjectName("run_status");
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  root->addWidget(status_);
  root->addStretch(1);

  connect(start_, &QPushButton::clicked, this, &RunPanel::start);
  connect(stop_, &QPushButton::clicked, c_, &RunController::stop);
  connect(pause_, &QPushButton::toggled, this, [this](bool on) {
    c_->setPaused(on);
    pause_->setText(on ? tr("Resume") : tr("Pause"));
    phase_->setText(on ? tr("Paused between steps.") : tr("Running."));
  });
  connect(c_, &RunController::started, this,
          [this](qint64 id) { status_->setText(tr("Run %1 recorded in the store.").arg(id)); });
  connect(c_, &RunController::phaseChanged, this, [this](const QString& p) {
    if (p.startsWith("warning: ")) {  // shown beside the run, not as a phase
      status_->setText("<span style='color:#b26a00'>" + p.toHtmlEscaped() + "</span>");
      return;
    }
    phase_->setText(tr("Phase: %1").arg(p));
    if (p == "finetune" || p == "unlearn") {
      bar_->setRange(0, 0);  // busy until the first step reports the total
      bar_->setFormat(p);
    }
  });
  connect(c_, &RunController::gpuMemory, this, [this](qint64 allocated, qint64 reserved, qint64 peak) {
    phase_->setToolTip(tr("GPU memory: %1 MiB allocated, %2 MiB reserved, peak %3 MiB")
                           .arg(allocated >> 20)
                           .arg(reserved >> 20)
                           .arg(peak >> 20));
    status_->setText(
        tr("GPU memory %1 MiB (peak %2 MiB, reserved %3 MiB)").arg(allocated >> 20).arg(peak >> 20).arg(reserved >> 20));
  });
  connect(c_, &RunController::progress, this, [this](qint64 step, qint64 total, double tps, double elapsed) {
    if (total > 0) {
      bar_->setRange(0, static_cast<int>(total));
      bar_->setValue(static_cast<int>(std::min(step, total)));
      const double eta = step > 0 ? elapsed / static_cast<double>(step) * static_cast<double>(total - step) : 0;
      bar_->setFormat(
          tr("step %1 / %2 · %3 tok/s · ETA %4 s").arg(step).arg(total).arg(tps, 0, 'f', 0).arg(std::max(0.0, eta), 0, 'f', 0));
    } else {
      bar_->setFormat(tr("step %1 · %2 tok/s").arg(step).arg(tps, 0, 'f', 0));
    }
  });
  connect(c_, &RunController::finished, this, [this](const QString& st, const QString& err, qint64 id) {
    start_->setEnabled(true);
    pause_->setEnabled(false);
    pause_->setChecked(false);
    stop_->setEnabled(false);
    bar_->setRange(0, 1);
    bar_->setValue(st == "completed" ? 1 : 0);
    bar_->setFormat(st);
    phase_->setText(tr("Run %1 %2.").arg(id).arg(st));
    status_->setStyleSheet(st == "failed" ? "QLabel { color: #c62828; }" : "");
    status_->setText(st == "failed"      ? tr("Failed: %1").arg(err)
                     : st == "cancelled" ? tr("Stopped; the state is saved and can be resumed.")
                                         : tr("Completed. See Generations and Metrics."));
  });
}

void RunPanel::start() {
  const QStringList problems = spec_->problems();
  if (!problems.isEmpty()) {
    status_->setStyleSheet("QLabel { color: #c62828; }");
    status_->setText(tr("The spec has problems (see Method & weights):\n%1").arg(problems.join("\n")));
    return;
  }
  status_->setStyleSheet("");
  status_->setText(tr("Starting…"));
  if (c_->start(QString::fromStdString(spec_->doc().dump()), spec_->baseDir(), storePath_)) {
    start_->setEnabled(false);
    pause_->setEnabled(true);
    stop_->setEnabled(true);
    bar_->setRange(0, 0);
    bar_->setFormat(tr("loading"));
  }
}

QString RunPanel::statusText() const { return phase_->text() + "\n" + status_->text(); }

}  // namespace lethe::ui
