#pragma once
// Owns the run's worker thread: a QThread (QThread::create) whose function parses the spec and
// executes experiment::run_pipeline, so the GUI thread does not block on the run. Pause makes the
// worker wait after its current training step; stop wakes a paused worker and sets the cancel
// token, which the pipeline checks in every phase (between loading stages, per generated token
// and scored batch, before every step, before the model is written), so a run ends cancelled,
// its state saved, within a step. The destructor (closing the workbench) stops the run and waits
// for that. No torch in this header.
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

  // `spec_json`: the spec document; relative paths resolve against `base_dir`; an empty
  // `store_path` records nothing. Returns false (and emits finished with "failed") when a run is
  // already going.
  bool start(const QString& spec_json, const QString& base_dir, const QString& store_path);
  void stop();
  void setPaused(bool paused);
  bool isRunning() const { return running_; }
  bool isPaused() const;
  LossBuffer& buffer() { return buffer_; }
  // Tracked prompts: kept across runs; each run measures them every `every` steps (the spec's
  // tracking section adds its own). Adding during a run reaches the running trainer at once.
  // Returns false (and says why in `error`) for an empty answer.
  bool addTrackedPrompt(const unlearn::TrackedPrompt& p, QString* error = nullptr);
  std::vector<unlearn::TrackedPrompt> trackedPrompts() const;
  void clearTrackedPrompts();  // not during a run
  void setTrackEvery(int every);
  int trackEvery() const { return trackEvery_; }
  QString storePath() const { return storePath_; }
  // The folder the last finished run wrote to (its model is OUTPUT/model when saved).
  QString lastOutputDir() const { return lastOutputDir_; }

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
  std::vector<unlearn::TrackedPrompt> tracked_;
  int trackEvery_ = static_cast<int>(unlearn::Tracker::kDefaultEvery);
  std::shared_ptr<unlearn::Tracker> tracker_;  // the running run's
  bool running_ = false;
  QString storePath_;
  QString lastOutputDir_;
};

}  // namespace lethe::ui
