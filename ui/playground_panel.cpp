#include "playground_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMetaObject>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <mutex>

#include "eval/evaluate.h"
#include "eval/quantize.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "text/load_tokenizer.h"

namespace lethe::ui {

struct PlaygroundModels {
  std::mutex mutex;  // one generation at a time
  std::string original_path, unlearned_path;
  bool int8 = false;  // the loaded models carry int8 weights
  std::unique_ptr<model::LoadedModel> original, unlearned;
  std::unique_ptr<text::Tokenizer> tok;
};

PlaygroundPanel::PlaygroundPanel(QWidget* parent) : QWidget(parent), models_(std::make_shared<PlaygroundModels>()) {
  auto* root = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  auto pathRow = [&](QLineEdit*& edit, const QString& label, const char* name) {
    auto* row = new QHBoxLayout;
    edit = new QLineEdit(this);
    edit->setObjectName(name);
    auto* b = new QToolButton(this);
    b->setText("…");
    connect(b, &QToolButton::clicked, this, [this, e = edit, label] {
      const QString d = QFileDialog::getExistingDirectory(this, label);
      if (!d.isEmpty()) e->setText(d);
    });
    row->addWidget(edit, 1);
    row->addWidget(b);
    form->addRow(label, row);
  };
  pathRow(original_, tr("Original model"), "playground_original");
  pathRow(unlearned_, tr("Unlearned model"), "playground_unlearned");
  root->addLayout(form);
  auto* pr = new QHBoxLayout;
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("playground_prompt");
  prompt_->setPlaceholderText(tr("Ask both models a question"));
  go_ = new QPushButton(tr("Generate"), this);
  go_->setObjectName("playground_go");
  format_ = new QComboBox(this);
  format_->setObjectName("playground_format");
  format_->addItems({"paper", "chat"});
  format_->setToolTip(tr("paper: \"### Question: … ### Answer:\" as the paper trains; chat: the model folder's chat template"));
  int8_ = new QCheckBox(tr("int8"), this);
  int8_->setObjectName("playground_int8");
  int8_->setToolTip(tr("int8 weights for the decoder layers: faster on the CPU, approximate (the int8 robustness probe's "
                       "grid). Evaluation and metrics always use the model's own weights."));
  pr->addWidget(prompt_, 1);
  pr->addWidget(format_);
  pr->addWidget(int8_);
  pr->addWidget(go_);
  root->addLayout(pr);
  auto* panes = new QHBoxLayout;
  for (auto [pane, title, name] :
       {std::tuple{&left_, tr("Original"), "playground_left"}, std::tuple{&right_, tr("Unlearned"), "playground_right"}}) {
    auto* box = new QVBoxLayout;
    box->addWidget(new QLabel("<b>" + title + "</b>", this));
    *pane = new QPlainTextEdit(this);
    (*pane)->setObjectName(name);
    (*pane)->setReadOnly(true);
    box->addWidget(*pane, 1);
    panes->addLayout(box, 1);
  }
  root->addLayout(panes, 1);
  status_ = new QLabel(this);
  root->addWidget(status_);
  connect(go_, &QPushButton::clicked, this, &PlaygroundPanel::generate);
  connect(prompt_, &QLineEdit::returnPressed, this, &PlaygroundPanel::generate);
}

PlaygroundPanel::~PlaygroundPanel() {
  if (thread_) thread_->wait();
}

void PlaygroundPanel::setModels(const QString& original, const QString& unlearned) {
  original_->setText(original);
  unlearned_->setText(unlearned);
}
void PlaygroundPanel::setPrompt(const QString& p) { prompt_->setText(p); }
void PlaygroundPanel::setPromptFormat(const QString& f) { format_->setCurrentText(f == "chat" ? "chat" : "paper"); }
void PlaygroundPanel::setInt8(bool on) { int8_->setChecked(on); }
QString PlaygroundPanel::statusText() const { return status_->text(); }
QString PlaygroundPanel::originalText() const { return left_->toPlainText(); }
QString PlaygroundPanel::unlearnedText() const { return right_->toPlainText(); }

void PlaygroundPanel::generate() {
  if (busy_ || prompt_->text().trimmed().isEmpty()) return;
  if (thread_) {
    thread_->wait();
    delete thread_;
  }
  busy_ = true;
  go_->setEnabled(false);
  left_->clear();
  right_->clear();
  status_->setText(tr("Loading and generating…"));
  const std::string prompt = prompt_->text().toStdString(), orig = original_->text().toStdString(),
                    unl = unlearned_->text().toStdString();
  const bool chat = format_->currentText() == "chat", int8 = int8_->isChecked();
  auto models = models_;
  thread_ = QThread::create([this, models, prompt, orig, unl, chat, int8] {
    QString error;
    bool int8_used = false;
    try {
      std::lock_guard<std::mutex> lock(models->mutex);
      // int8 weights go on a fresh load and come off by loading again.
      const bool reload = models->int8 != int8;
      models->int8 = int8;
      auto load = [&](const std::string& path, std::string& cached, std::unique_ptr<model::LoadedModel>& slot) {
        if (path.empty()) return;
        if (cached != path || !slot || reload) {
          slot.reset();  // one model in memory at a time
          slot = std::make_unique<model::LoadedModel>(model::load_model(path, {"fp32", "auto"}));
          cached = path;
          // On a GPU the weights are read fast enough: int8 would only add dequantising.
          if (int8 && slot->model->options().device().is_cpu()) eval::use_int8_weights(*slot->model);
        }
        int8_used = int8_used || (int8 && slot->model->options().device().is_cpu());
      };
      load(orig, models->original_path, models->original);
      load(unl, models->unlearned_path, models->unlearned);
      if (!models->tok) models->tok = text::load_tokenizer(orig.empty() ? unl : orig);
      const auto format = chat ? data::PromptFormat::chat(orig.empty() ? unl : orig, *models->tok) : data::PromptFormat::paper();
      model::SamplingOptions o;
      o.max_new_tokens = 64;
      if (!chat) o.stop_strings = {"###"};
      for (int side = 0; side < 2; ++side) {
        auto& m = side == 0 ? models->original : models->unlearned;
        if (!m) continue;
        QPlainTextEdit* pane = side == 0 ? left_ : right_;
        model::generate(*m->model, *models->tok, format, {prompt}, o, [this, pane](size_t, const std::string& text) {
          const QString t = QString::fromStdString(text);
          QMetaObject::invokeMethod(
              pane, [pane, t] { pane->setPlainText(t); }, Qt::QueuedConnection);
          return true;
        });
      }
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        this,
        [this, error, int8_used] {
          busy_ = false;
          go_->setEnabled(true);
          const QString how = tr("Greedy, 64 tokens at most, stops at the next ###.") +
                              (int8_used ? tr(" int8 weights: approximate.") : QString());
          status_->setText(error.isEmpty() ? how : tr("Failed: %1").arg(error));
          Q_EMIT done();
        },
        Qt::QueuedConnection);
  });
  thread_->start();
}

}  // namespace lethe::ui
