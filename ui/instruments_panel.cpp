#include "instruments_panel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMetaObject>
#include <QPushButton>
#include <QTabWidget>
#include <QTextBrowser>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>
#include <mutex>
#include <optional>

#include "data/prompt_format.h"
#include "data/sources.h"
#include "eval/instruments.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "plot_style.h"
#include "qcustomplot_include.h"
#include "text/load_tokenizer.h"
#include "unlearn/losses.h"

namespace lethe::ui {

struct InstrumentModels {
  std::mutex mutex;  // one computation at a time
  std::string original_path, unlearned_path;
  std::unique_ptr<model::LoadedModel> original, unlearned;
  std::unique_ptr<text::Tokenizer> tok;
  void load(const std::string& orig, const std::string& unl) {
    auto one = [](const std::string& path, std::string& cached, std::unique_ptr<model::LoadedModel>& slot) {
      if (cached != path || !slot) {
        slot = std::make_unique<model::LoadedModel>(model::load_model(path, {"fp32", "auto"}));
        cached = path;
      }
    };
    if (orig.empty() || unl.empty()) throw std::runtime_error("choose the original and the unlearned model first");
    one(orig, original_path, original);
    one(unl, unlearned_path, unlearned);
    if (original->info.vocab_size != unlearned->info.vocab_size)
      throw std::runtime_error("the two models have different vocabularies: they cannot be compared");
    tok = text::load_tokenizer(orig);
  }
};

namespace {
void stylePlot(QCustomPlot* p, const QString& x, const QString& y) {
  const QPalette pal = p->palette();
  applyPlotPalette(p, pal);
  p->xAxis->setLabel(x);
  p->yAxis->setLabel(y);
  p->legend->setVisible(true);
  p->legend->setBrush(pal.color(QPalette::Base));
  p->legend->setTextColor(pal.color(QPalette::Text));
  p->setMinimumHeight(120);
}
}  // namespace

InstrumentsPanel::InstrumentsPanel(QWidget* parent) : QWidget(parent), models_(std::make_shared<InstrumentModels>()) {
  auto* root = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  auto pathRow = [&](QLineEdit*& edit, const QString& label, const char* name, bool folder) {
    auto* row = new QHBoxLayout;
    edit = new QLineEdit(this);
    edit->setObjectName(name);
    auto* b = new QToolButton(this);
    b->setText("…");
    connect(b, &QToolButton::clicked, this, [this, e = edit, label, folder] {
      const QString d = folder ? QFileDialog::getExistingDirectory(this, label) : QFileDialog::getOpenFileName(this, label);
      if (!d.isEmpty()) e->setText(d);
    });
    row->addWidget(edit, 1);
    row->addWidget(b);
    return row;
  };
  auto* models = new QHBoxLayout;
  models->addLayout(pathRow(original_, tr("Original model"), "instruments_original", true), 1);
  models->addLayout(pathRow(unlearned_, tr("Unlearned model"), "instruments_unlearned", true), 1);
  form->addRow(tr("Models"), models);
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("instruments_prompt");
  prompt_->setPlaceholderText(tr("A question, e.g. a forget prompt"));
  form->addRow(tr("Prompt"), prompt_);
  auto* q = new QHBoxLayout;
  answer_ = new QLineEdit(this);
  answer_->setObjectName("instruments_answer");
  answer_->setPlaceholderText(tr("Its harmful answer (tracked and scored; empty: the original's own choice)"));
  format_ = new QComboBox(this);
  format_->addItems({"paper", "chat"});
  format_->setToolTip(tr("paper: \"### Question: … ### Answer:\" as the paper trains; chat: the model folder's chat template"));
  inspect_ = new QPushButton(tr("Inspect"), this);
  inspect_->setObjectName("instruments_inspect");
  inspect_->setToolTip(tr("The logit lens and the answer's token log-probabilities under both models"));
  q->addWidget(answer_, 1);
  q->addWidget(format_);
  q->addWidget(inspect_);
  form->addRow(tr("Answer"), q);
  auto* d = new QHBoxLayout;
  d->addLayout(pathRow(forget_, tr("Forget data"), "instruments_forget", false), 1);
  d->addLayout(pathRow(normal_, tr("Normal data"), "instruments_normal", false), 1);
  layers_ = new QPushButton(tr("Compare layers"), this);
  layers_->setObjectName("instruments_layers");
  layers_->setToolTip(tr("Per-layer cosine similarity of the two models' hidden states on forget and on normal texts"));
  d->addWidget(layers_);
  form->addRow(tr("Forget / normal"), d);
  root->addLayout(form);

  // One view at a time, each the panel's full width (the dock is narrow at 1280x800).
  views_ = new QTabWidget(this);
  views_->setObjectName("instruments_views");
  lensPlot_ = new QCustomPlot(views_);
  lensPlot_->setObjectName("instruments_lens");
  stylePlot(lensPlot_, tr("layer (0 = embeddings)"), tr("p(tracked token)"));
  lensPlot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);  // the curves rise to the right
  lensPlot_->setToolTip(
      tr("Logit lens: the probability of the answer's first token read from each layer through the "
         "final norm and LM head. Where the unlearned curve stays low, that layer no longer leads to the answer."));
  tokenView_ = new QTextBrowser(views_);
  tokenView_->setObjectName("instruments_tokens");
  simPlot_ = new QCustomPlot(views_);
  simPlot_->setObjectName("instruments_similarity");
  stylePlot(simPlot_, tr("layer (0 = embeddings)"), tr("cosine similarity to the original"));
  simPlot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignLeft);  // they fall to the right
  simPlot_->setToolTip(tr("How much each layer's hidden states changed, on forget texts and on normal texts (1 = unchanged)."));
  views_->addTab(lensPlot_, tr("Logit lens"));
  views_->addTab(tokenView_, tr("Answer tokens"));
  views_->addTab(simPlot_, tr("Layer similarity"));
  root->addWidget(views_, 1);
  status_ = new QLabel(this);
  status_->setWordWrap(true);
  root->addWidget(status_);
  tokenView_->setHtml(tr("<p>Type a question and its harmful answer and press <b>Inspect</b>: each answer token is "
                         "coloured by how much less likely the unlearned model finds it than the original.</p>"));
  connect(inspect_, &QPushButton::clicked, this, &InstrumentsPanel::inspect);
  connect(prompt_, &QLineEdit::returnPressed, this, &InstrumentsPanel::inspect);
  connect(layers_, &QPushButton::clicked, this, &InstrumentsPanel::compareLayers);
}

InstrumentsPanel::~InstrumentsPanel() {
  if (thread_) thread_->wait();
}

void InstrumentsPanel::setModels(const QString& original, const QString& unlearned) {
  original_->setText(original);
  unlearned_->setText(unlearned);
}
void InstrumentsPanel::setData(const QString& forget, const QString& normal) {
  forget_->setText(forget);
  normal_->setText(normal);
}
void InstrumentsPanel::setPrompt(const QString& prompt, const QString& answer) {
  prompt_->setText(prompt);
  answer_->setText(answer);
}
void InstrumentsPanel::setPromptFormat(const QString& f) { format_->setCurrentText(f == "chat" ? "chat" : "paper"); }
QString InstrumentsPanel::tokensHtml() const { return tokenView_->toHtml(); }
QString InstrumentsPanel::status() const { return status_->text(); }
void InstrumentsPanel::showView(const QString& view) { views_->setCurrentIndex(view == "tokens" ? 1 : view == "layers" ? 2 : 0); }

void InstrumentsPanel::inspect() { startWork(false); }
void InstrumentsPanel::compareLayers() { startWork(true); }

void InstrumentsPanel::startWork(bool layers) {
  if (busy_) return;
  if (!layers && prompt_->text().trimmed().isEmpty()) {
    status_->setText(tr("Type a question first."));
    return;
  }
  if (thread_) {
    thread_->wait();
    delete thread_;
    thread_ = nullptr;
  }
  busy_ = true;
  inspect_->setEnabled(false);
  layers_->setEnabled(false);
  status_->setText(layers ? tr("Comparing the layers on the forget and normal data…") : tr("Reading every layer…"));
  const std::string orig = original_->text().toStdString(), unl = unlearned_->text().toStdString(),
                    prompt = prompt_->text().toStdString(), answer = answer_->text().toStdString(),
                    forget = forget_->text().toStdString(), normal = normal_->text().toStdString();
  const bool chat = format_->currentText() == "chat";
  auto models = models_;
  thread_ = QThread::create([this, models, orig, unl, prompt, answer, forget, normal, chat, layers] {
    QString error, target;
    QVector<double> before, after, simF, simN;
    QString html;
    int ntokens = 0;
    try {
      std::lock_guard<std::mutex> lock(models->mutex);
      models->load(orig, unl);
      auto& tok = *models->tok;
      const auto fmt = chat ? data::PromptFormat::chat(orig, tok) : data::PromptFormat::paper();
      if (layers) {
        if (forget.empty() || normal.empty()) throw std::runtime_error("choose the forget and the normal data first");
        auto texts = [&](const std::string& path) {
          std::vector<std::vector<int64_t>> seqs;
          for (const auto& p : data::open_source(path, tok, data::SourceOptions{}).pairs) {
            if (seqs.size() == 32) break;
            seqs.push_back(fmt.encode_text(tok, p.prompt, p.response));
          }
          if (seqs.empty()) throw std::runtime_error(path + ": no question/answer pairs");
          return seqs;
        };
        const int64_t pad = unlearn::batch_pad_id(tok);
        for (double v : eval::layer_similarity(*models->original->model, *models->unlearned->model, texts(forget), pad))
          simF << v;
        for (double v : eval::layer_similarity(*models->original->model, *models->unlearned->model, texts(normal), pad))
          simN << v;
      } else {
        const auto ids = fmt.encode_prompt(tok, prompt);
        int64_t target_id = -1;
        std::vector<int64_t> full;
        int64_t start = 0;
        if (!answer.empty()) {
          full = fmt.encode_text(tok, prompt, answer);
          start = fmt.answer_start(tok, prompt, answer);
          if (start < static_cast<int64_t>(full.size())) target_id = full[static_cast<size_t>(start)];
        }
        const auto lo = eval::logit_lens(*models->original->model, tok, ids, 5, target_id);
        const auto lu = eval::logit_lens(*models->unlearned->model, tok, ids, 5, lo.target.id);
        for (const auto& l : lo.layers) before << l.target_prob;
        for (const auto& l : lu.layers) after << l.target_prob;
        target = QString::fromStdString(lo.target.text);
        if (!full.empty() && start >= 1 && start < static_cast<int64_t>(full.size())) {
          const int64_t pad = unlearn::batch_pad_id(tok);
          const auto so = model::score_ids(*models->original->model, pad, {full})[0];
          const auto su = model::score_ids(*models->unlearned->model, pad, {full})[0];
          html = "<p>";
          for (int64_t t = start; t < static_cast<int64_t>(full.size()); ++t) {
            const double a = so.logprobs[static_cast<size_t>(t - 1)], b = su.logprobs[static_cast<size_t>(t - 1)];
            const double drop = std::max(0.0, a - b);  // nats the token lost
            const int alpha = static_cast<int>(std::lround(std::min(1.0, drop / 10.0) * 200));
            const QString text = QString::fromStdString(tok.decode_text({full[static_cast<size_t>(t)]})).toHtmlEscaped();
            html += QString("<span style='background-color: rgba(192,57,43,%1)' title='original %2, unlearned %3'>%4</span> ")
                        .arg(alpha)
                        .arg(a, 0, 'f', 2)
                        .arg(b, 0, 'f', 2)
                        .arg(text.isEmpty() ? QString("␣") : text);
            ++ntokens;
          }
          html += "</p><p><small>" +
                  tr("Red: how much less likely the unlearned model finds each answer token than the original (full red: "
                     "10 nats or more). Hover a token for both log-probabilities.") +
                  "</small></p>";
        }
      }
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        this,
        [this, error, target, before, after, simF, simN, html, ntokens, layers] {
          busy_ = false;
          inspect_->setEnabled(true);
          layers_->setEnabled(true);
          if (!error.isEmpty()) {
            status_->setText(tr("Failed: %1").arg(error));
          } else if (layers) {
            simForget_ = simF;
            simNormal_ = simN;
            drawSimilarity();
            views_->setCurrentIndex(2);
            status_->setText(tr("Cosine similarity per layer on the first 32 forget and normal texts."));
          } else {
            lensBefore_ = before;
            lensAfter_ = after;
            tokens_ = ntokens;
            drawLens(target);
            if (!html.isEmpty()) tokenView_->setHtml(html);
            views_->setCurrentIndex(0);
            status_->setText(tr("Tracked token %1: p %2 → %3 at the last layer.")
                                 .arg(target.toHtmlEscaped())
                                 .arg(before.isEmpty() ? 0.0 : before.last(), 0, 'f', 4)
                                 .arg(after.isEmpty() ? 0.0 : after.last(), 0, 'f', 4));
          }
          Q_EMIT done();
        },
        Qt::QueuedConnection);
  });
  thread_->start();
}

void InstrumentsPanel::drawLens(const QString& target) {
  lensPlot_->clearGraphs();
  QVector<double> xs;
  for (int i = 0; i < lensBefore_.size(); ++i) xs << i;
  auto add = [&](const QVector<double>& ys, const QString& name, QColor c) {
    auto* g = lensPlot_->addGraph();
    g->setName(name);
    g->setPen(QPen(c, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, 6));
    g->setData(xs, ys);
  };
  add(lensBefore_, tr("original"), QColor(0xd5, 0x5e, 0x00));
  add(lensAfter_, tr("unlearned"), QColor(0x00, 0x72, 0xb2));
  lensPlot_->yAxis->setLabel(tr("p(%1)").arg(target.trimmed().isEmpty() ? tr("tracked token") : target.trimmed()));
  lensPlot_->xAxis->setRange(-0.3, std::max(1.0, xs.isEmpty() ? 1.0 : xs.last() + 0.3));
  lensPlot_->yAxis->setRange(0, 1.05);
  QSharedPointer<QCPAxisTickerFixed> t(new QCPAxisTickerFixed);
  t->setTickStep(1);
  lensPlot_->xAxis->setTicker(t);
  lensPlot_->replot();
}

void InstrumentsPanel::drawSimilarity() {
  simPlot_->clearGraphs();
  QVector<double> xs;
  for (int i = 0; i < simForget_.size(); ++i) xs << i;
  auto add = [&](const QVector<double>& ys, const QString& name, QColor c) {
    auto* g = simPlot_->addGraph();
    g->setName(name);
    g->setPen(QPen(c, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, 6));
    g->setData(xs, ys);
  };
  add(simForget_, tr("forget texts"), QColor(0xc0, 0x39, 0x2b));
  add(simNormal_, tr("normal texts"), QColor(0x00, 0x9e, 0x73));
  double lo = 1;
  for (double v : simForget_ + simNormal_) lo = std::min(lo, v);
  simPlot_->xAxis->setRange(-0.3, std::max(1.0, xs.isEmpty() ? 1.0 : xs.last() + 0.3));
  simPlot_->yAxis->setRange(std::max(-1.0, std::floor((lo - 0.05) * 10) / 10), 1.02);
  QSharedPointer<QCPAxisTickerFixed> t(new QCPAxisTickerFixed);
  t->setTickStep(1);
  simPlot_->xAxis->setTicker(t);
  simPlot_->replot();
}

}  // namespace lethe::ui
