#pragma once
// Step metrics handed from the run's worker thread to the GUI thread. The worker appends under
// a lock hidden in this class; a timer on the GUI thread takes everything new every ~40 ms and
// adds it to the plot in one go (never one queued signal per step); tracked prompts' points
// travel the same way. No Qt, no torch.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "unlearn/tracking.h"

namespace lethe::ui {

struct LossPoint {
  std::string phase;
  int64_t step = 0;
  double loss_fgt = 0, loss_rdn = 0, loss_nor = 0, total = 0, forget_ce = 0, lr = 0, grad_norm = 0, tokens_per_s = 0,
         elapsed_s = 0;
};

class LossBuffer {
 public:
  void push(const LossPoint& p) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(p);
  }
  std::vector<LossPoint> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<LossPoint> out;
    out.swap(pending_);
    return out;
  }
  // Tracked prompts' measurements (unlearn/tracking.h), drained the same way.
  void pushTracks(const std::vector<unlearn::TrackPoint>& points) {
    std::lock_guard<std::mutex> lock(mutex_);
    tracks_.insert(tracks_.end(), points.begin(), points.end());
  }
  std::vector<unlearn::TrackPoint> takeTracks() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<unlearn::TrackPoint> out;
    out.swap(tracks_);
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<LossPoint> pending_;
  std::vector<unlearn::TrackPoint> tracks_;
};

}  // namespace lethe::ui
