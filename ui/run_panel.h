#pragma once
// Run: start, pause/resume, stop; progress with ETA and tokens/s; status and error line.
#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;

namespace lethe::ui {

class RunController;
class SpecModel;

class RunPanel : public QWidget {
  Q_OBJECT
 public:
  RunPanel(RunController* controller, SpecModel* spec, QWidget* parent = nullptr);
  QString statusText() const;
  void setStorePath(const QString& p) { storePath_ = p; }

 public Q_SLOTS:
  void start();

 private:
  RunController* c_;
  SpecModel* spec_;
  QString storePath_;
  QPushButton* start_ = nullptr;
  QPushButton* pause_ = nullptr;
  QPushButton* stop_ = nullptr;
  QProgressBar* bar_ = nullptr;
  QLabel* phase_ = nullptr;
  QLabel* status_ = nullptr;
};

}  // namespace lethe::ui
