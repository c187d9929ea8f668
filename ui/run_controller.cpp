#include "run_controller.h"

#include <QMetaObject>
#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "experiment/pipeline.h"
#include "experiment/spec.h"
#include "store/store.h"
#include "util/error.h"

namespace lethe::ui {

struct RunShared {
  unlearn::CancelToken cancel;
  std::mutex mutex;
  std::condition_variable cv;
  bool paused = false;
};

namespace {

// Runs on the worker thread. Each step's losses go to the controller's buffer (the GUI thread
// drains it on a timer); the run id, phases, warnings, and each step's progress and GPU memory
// cross to the GUI thread as queued calls that emit the controller's signals.
class WorkerObserver : public experiment::RunObserver {
 public:
  WorkerObserver(RunController* c, std::shared_ptr<RunShared> shared, int64_t total)
      : c_(c), shared_(std::move(shared)), total_(total) {}
  void on_run(int64_t id) override {
    QMetaObject::invokeMethod(
        c_, [c = c_, id] { Q_EMIT c->started(id); }, Qt::QueuedConnection);
  }
  void on_phase(const std::string& p) override {
    const QString phase = QString::fromStdString(p);
    QMetaObject::invokeMethod(
        c_, [c = c_, phase] { Q_EMIT c->phaseChanged(phase); }, Qt::QueuedConnection);
    phase_ = p;
  }
  void on_warning(const std::string& w) override {
    // Warnings travel as phases starting with "warning: "; the run panel shows them beside the
    // run instead of as a phase.
    const QString text = QStringLiteral("warning: ") + QString::fromStdString(w);
    QMetaObject::invokeMethod(
        c_, [c = c_, text] { Q_EMIT c->phaseChanged(text); }, Qt::QueuedConnection);
  }
  void on_track(const std::vector<unlearn::TrackPoint>& points) override { c_->buffer().pushTracks(points); }
  void on_step(const unlearn::StepMetrics& m) override {
    LossPoint p;
    p.phase = phase_;
    p.step = m.step;
    p.loss_fgt = m.loss_fgt;
    p.loss_rdn = m.loss_rdn;
    p.loss_nor = m.loss_nor;
    p.total = m.total;
    p.forget_ce = m.forget_ce;
    p.lr = m.lr;
    p.grad_norm = m.grad_norm;
    p.tokens_per_s = m.tokens_per_s;
    p.elapsed_s = m.elapsed_s;
    c_->buffer().push(p);
    // The total is the unlearning budget; fine-tuning steps report 0 (no total).
    const qint64 step = m.step, total = phase_ == "unlearn" ? total_ : 0;
    const double tps = m.tokens_per_s, el = m.elapsed_s;
    QMetaObject::invokeMethod(
        c_, [c = c_, step, total, tps, el] { Q_EMIT c->progress(step, total, tps, el); }, Qt::QueuedConnection);
    if (m.gpu_allocated >= 0) {
      const qint64 a = m.gpu_allocated, r = m.gpu_reserved, p = m.gpu_peak;
      QMetaObject::invokeMethod(
          c_, [c = c_, a, r, p] { Q_EMIT c->gpuMemory(a, r, p); }, Qt::QueuedConnection);
    }
    // Pause: wait here, after the step, until resumed or cancelled.
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->cv.wait(lock, [&] { return !shared_->paused || shared_->cancel.cancelled(); });
  }

 private:
  RunController* c_;
  std::shared_ptr<RunShared> shared_;
  int64_t total_;
  std::string phase_ = "unlearn";
};

}  // namespace

RunController::RunController(QObject* parent) : QObject(parent) {}

RunController::~RunController() {
  stop();
  if (thread_) {
    thread_->quit();
    thread_->wait();
  }
}

bool RunController::start(const QString& spec_json, const QString& base_dir, const QString& store_path) {
  if (running_) {
    Q_EMIT finished("failed", tr("A run is already going."), 0);
    return false;
  }
  if (thread_) {
    thread_->wait();
    delete thread_;
    thread_ = nullptr;
  }
  shared_ = std::make_shared<RunShared>();
  running_ = true;
  storePath_ = store_path;
  const std::string spec_text = spec_json.toStdString(), base = base_dir.toStdString(), db = store_path.toStdString();
  auto shared = shared_;
  auto tracker = std::make_shared<unlearn::Tracker>(trackEvery_);
  for (const auto& p : tracked_) tracker->add(p);
  tracker_ = tracker;
  thread_ = QThread::create([this, shared, tracker, spec_text, base, db] {
    QString status, error, output_dir;
    qint64 run_id = 0;
    try {
      io::Json j = io::parse_json(spec_text, "spec");
      j["_base_dir"] = base;
      experiment::Spec spec = experiment::parse_spec(j, base);
      std::unique_ptr<store::Store> st;
      if (!db.empty()) st = std::make_unique<store::Store>(db);
      WorkerObserver obs(this, shared, spec.unlearn.max_steps);
      auto res = experiment::run_pipeline(spec, st.get(), obs, shared->cancel, 0, tracker.get());
      status = QString::fromStdString(store::run_status_name(res.status));
      error = QString::fromStdString(res.error);
      run_id = res.run_id;
      output_dir = QString::fromStdString(res.output_dir.string());
    } catch (const std::exception& e) {  // the thread boundary: an error ends the run as failed
      status = "failed";
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        this,
        [this, status, error, run_id, output_dir] {
          running_ = false;
          lastOutputDir_ = output_dir;
          Q_EMIT finished(status, error, run_id);
        },
        Qt::QueuedConnection);
  });
  thread_->start();
  return true;
}

void RunController::stop() {
  if (!shared_) return;
  shared_->cancel.cancel();
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->paused = false;
  shared_->cv.notify_all();
}

void RunController::setPaused(bool paused) {
  if (!shared_) return;
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->paused = paused;
  shared_->cv.notify_all();
}

bool RunController::addTrackedPrompt(const unlearn::TrackedPrompt& p, QString* error) {
  if (p.answer.empty()) {
    if (error) *error = tr("A tracked prompt needs an answer to follow.");
    return false;
  }
  unlearn::TrackedPrompt q = p;
  q.id = static_cast<int64_t>(tracked_.size());
  try {
    if (running_ && tracker_) q.id = tracker_->add(q);  // thread-safe: the trainer measures it from its next due step
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  tracked_.push_back(q);
  return true;
}

std::vector<unlearn::TrackedPrompt> RunController::trackedPrompts() const {
  return running_ && tracker_ ? tracker_->prompts() : tracked_;
}

void RunController::clearTrackedPrompts() {
  if (!running_) tracked_.clear();
}

void RunController::setTrackEvery(int every) {
  trackEvery_ = std::max(1, every);
  if (running_ && tracker_) tracker_->set_every(trackEvery_);
}

bool RunController::isPaused() const {
  if (!shared_) return false;
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->paused;
}

}  // namespace lethe::ui
