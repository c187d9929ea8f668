#pragma once
// A dock whose feature this build does not have yet: says what it will hold and what is
// missing, rather than showing controls that do nothing.
#include <QWidget>

namespace lethe::ui {

class PendingPanel : public QWidget {
  Q_OBJECT
 public:
  PendingPanel(const QString& title, const QString& purpose, const QString& missing, QWidget* parent = nullptr);
};

}  // namespace lethe::ui
