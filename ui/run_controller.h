#pragma once
// Owns the run's worker thread: a RunWorker QObject moved onto a QThread that executes
// experiment::run_pipeline for a spec, so the GUI never blocks. Start, pause/resume (the worker
// waits between steps), stop (cancel at the next step). The destructor cancels, quits and waits.
// No torch in this header.
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <memory>

#include "loss_buffer.h"

namespace lethe::ui {

struct RunShared;  // cancel token, pause state: shared with the worker (run_controller.cpp)

class RunController : public QObject {
  Q_OBJECT
 public:
  explicit RunController(QObject* parent = nullptr);
  ~RunController() override;

  // `spec_json`: the spec document; relative paths resolve against `base_dir`. Returns false
  // (and emits failed) when a run is already going.
  bool start(const QString& spec_json, const QString& base_dir, const QString& store_path);
  void stop();
  void setPaused(bool paused);
  bool isRunning() const { return running_; }
  bool isPaused() const;
  LossBuffer& buffer() { return buffer_; }
  QString storePath() const { return storePath_; }

 Q_SIGNALS:
  void started(qint64 runId);
  void phaseChanged(const QString& phase);
  void progress(qint64 step, qint64 total, double tokensPerSecond, double elapsed);
  // On a GPU: the caching allocator's bytes after a step (allocated, reserved, peak).
  void gpuMemory(qint64 allocated, qint64 reserved, qint64 peak);
  // status: completed | cancelled | failed; error set when failed.
  void finished(const QString& status, const QString& error, qint64 runId);

 private:
  std::shared_ptr<RunShared> shared_;
  QThread* thread_ = nullptr;
  LossBuffer buffer_;
  bool running_ = false;
  QString storePath_;
};

}  // namespace lethe::ui
