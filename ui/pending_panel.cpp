#include "pending_panel.h"

#include <QLabel>
#include <QVBoxLayout>

namespace lethe::ui {

PendingPanel::PendingPanel(const QString& title, const QString& purpose, const QString& missing, QWidget* parent)
    : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* label = new QLabel(this);
  label->setObjectName("pending_text");
  label->setWordWrap(true);
  label->setTextFormat(Qt::RichText);
  label->setText(QString("<p><b>%1</b></p><p>%2</p><p style='color: palette(mid)'><i>%3</i></p>")
                     .arg(title.toHtmlEscaped(), purpose.toHtmlEscaped(), missing.toHtmlEscaped()));
  layout->addWidget(label);
  layout->addStretch(1);
}

}  // namespace lethe::ui
