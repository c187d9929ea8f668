// The workbench window offscreen: its docks, and opening a model through the Model panel.
#include <QDockWidget>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QSettings>
#include <QSignalSpy>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QCheckBox>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableView>
#include <QToolButton>
#include <QScreen>
#include <QtTest>

#include "loss_plot_panel.h"
#include "main_window.h"
#include "method_panel.h"
#include "metrics_panel.h"
#include "store/store.h"
#include "spec_model.h"
#include "unlearn/options.h"
#include "model_panel.h"
#include "support/tiny_opt.h"

using namespace lethe::ui;
using lethe::testing::TempDir;

class MainWindowTest : public QObject {
  Q_OBJECT
  TempDir store_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings go to a test location
    QSettings().clear();
    qputenv("LETHE_STORE", QByteArray(store_.path.c_str()) + "/lethe.db");
  }

  void hasEveryDockOfTheLayout() {
    MainWindow w;
    QStringList names;
    for (QDockWidget* d : w.docks()) names << d->objectName();
    names.sort();
    QCOMPARE(names, QStringList({"dock_datasets", "dock_generations", "dock_history", "dock_instruments", "dock_method",
                                 "dock_metrics", "dock_model", "dock_playground", "dock_run", "dock_tracking"}));
    QVERIFY(w.lossPanel() != nullptr);
    QVERIFY(w.findChild<QLabel*>("runtime_label")->text().contains("libtorch"));
  }

  void theFirstStartFitsTheScreen() {
    QSettings().remove("window/geometry");
    MainWindow w;
    const QRect avail = QGuiApplication::primaryScreen()->availableGeometry();
    QVERIFY2(w.width() <= avail.width() && w.height() <= avail.height(),
             qPrintable(QString("%1x%2 on %3x%4").arg(w.width()).arg(w.height()).arg(avail.width()).arg(avail.height())));
    QVERIFY(w.width() >= std::min(avail.width(), 1280) && w.height() >= std::min(avail.height(), 800));
  }

  void perspectivesShowTheirDocksAndRememberTheirLayouts() {
    QSettings().remove("perspectives");
    auto visible = [](MainWindow& w) {
      QStringList names;
      for (QDockWidget* d : w.docks())
        if (d->isVisible()) names << d->objectName();
      names.sort();
      return names;
    };
    {
      MainWindow w;
      w.resize(1280, 800);
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      QCOMPARE(w.perspective(), QString("setup"));  // the first start
      QCOMPARE(visible(w), QStringList({"dock_datasets", "dock_method", "dock_model", "dock_run"}));
      QVERIFY(!w.lossPanel()->isVisible());
      // Ctrl+2: Train, the plot in the middle.
      QTest::keySequence(&w, QKeySequence(Qt::CTRL | Qt::Key_2));
      QCOMPARE(w.perspective(), QString("train"));
      QCOMPARE(visible(w), QStringList({"dock_method", "dock_metrics", "dock_run", "dock_tracking"}));
      QVERIFY(w.lossPanel()->isVisible());
      QVERIFY2(w.lossPanel()->width() >= 500, qPrintable(QString::number(w.lossPanel()->width())));
      w.setPerspective("review");
      // Generations in front; the playground and instruments are tabs behind it.
      QCOMPARE(visible(w), QStringList({"dock_generations", "dock_instruments", "dock_playground"}));
      QCOMPARE(w.tabifiedDockWidgets(w.findChild<QDockWidget*>("dock_generations")).size(), 2);
      QVERIFY(!w.findChild<QDockWidget*>("dock_generations")->visibleRegion().isEmpty());
      QVERIFY(w.findChild<QDockWidget*>("dock_playground")->visibleRegion().isEmpty());
      w.setPerspective("compare");
      QCOMPARE(visible(w), QStringList({"dock_history", "dock_metrics"}));
      // A change to Train's layout is Train's: hide Metrics there, go away and back.
      w.setPerspective("train");
      w.findChild<QDockWidget*>("dock_metrics")->hide();
      w.setPerspective("setup");
      w.setPerspective("train");
      QCOMPARE(visible(w), QStringList({"dock_method", "dock_run", "dock_tracking"}));
      w.close();  // stores the layouts and the perspective
    }
    MainWindow again;
    again.show();
    QVERIFY(QTest::qWaitForWindowExposed(&again));
    QCOMPARE(again.perspective(), QString("train"));
    QCOMPARE(visible(again), QStringList({"dock_method", "dock_run", "dock_tracking"}));
    again.setPerspective("compare");
    QCOMPARE(visible(again), QStringList({"dock_history", "dock_metrics"}));
    QSettings().remove("perspectives");
  }

  void opensATinyModelAndShowsItsSummary() {
    TempDir d;
    const int64_t n = lethe::testing::write_tiny_opt(d.path);
    MainWindow w;
    w.show();
    QSignalSpy opened(w.modelPanel(), &ModelPanel::modelOpened);
    QVERIFY(w.openModel(QString::fromStdString(d.path.string())));
    QCOMPARE(opened.count(), 1);
    ModelPanel* p = w.modelPanel();
    QCOMPARE(p->field("layers"), QString("2"));
    QVERIFY2(p->field("hidden").startsWith("16 / 4 heads"), qPrintable(p->field("hidden")));
    QVERIFY2(p->field("parameters").startsWith(QLocale().toString(static_cast<qlonglong>(n))),
             qPrintable(p->field("parameters")));
    QVERIFY(p->field("weights").startsWith("safetensors: model.safetensors"));
    QCOMPARE(p->tensorRows(), 36);
    // The tensor list is an advanced section, folded until opened; its filter narrows it to one
    // layer's tensors.
    auto* table = p->findChild<QTableView*>("tensor_table");
    QVERIFY(table->isHidden());
    p->findChild<QToolButton*>("tensors_toggle")->click();
    QVERIFY(!table->isHidden());
    p->findChild<QLineEdit*>()->setText("layers.1.");
    QCOMPARE(p->tensorRows(), 16);
    // Memory follows the LoRA rank: 20 B/param full; LoRA base 4 B/param + 16 B/adapter param.
    QCOMPARE(p->field("mem_full"), QString::fromStdString(lethe::model::human_bytes(20 * n)));
    p->findChild<QSpinBox*>("lora_rank")->setValue(4);
    const int64_t lora = 2 * 2 * 4 * 32;
    QVERIFY2(p->field("mem_lora").startsWith(QString::fromStdString(lethe::model::human_bytes(4 * n + 16 * lora))),
             qPrintable(p->field("mem_lora")));
    // One step with activations, at the spec's batch and K: more rows, more memory.
    const QString step = p->field("mem_step_full");
    QVERIFY2(!step.isEmpty() && step != QStringLiteral("—"), qPrintable(step));
    p->setStepShape(16, 5, false, false);
    QVERIFY2(p->field("mem_step_full") != step, qPrintable(p->field("mem_step_full")));
    auto* note = p->findChild<QLabel*>("step_memory_note");
    QVERIFY2(note->text().contains("at batch 16, 128 tokens per row, K 5, corrected mode, fp32"), qPrintable(note->text()));
    QVERIFY(p->errorText().isEmpty());
    QCOMPARE(QSettings().value("recent/models").toStringList().value(0), QString::fromStdString(d.path.string()));
  }

  // A Llama-family folder (GQA, untied head; transformers wrote it: tests/fixtures/families).
  void opensATinyLlamaAndShowsItsFamily() {
    MainWindow w;
    w.show();
    const QString dir = QString(LETHE_SOURCE_DIR) + "/tests/fixtures/families/llama_gqa_untied";
    QVERIFY(w.openModel(dir));
    ModelPanel* p = w.modelPanel();
    QVERIFY2(p->field("type").startsWith("llama (LlamaForCausalLM)"), qPrintable(p->field("type")));
    QVERIFY2(p->field("hidden").contains("2 kv heads"), qPrintable(p->field("hidden")));
    QVERIFY2(p->field("details").contains("rope: default"), qPrintable(p->field("details")));
    QVERIFY2(p->field("details").contains("RMSNorm"), qPrintable(p->field("details")));
    QVERIFY(p->errorText().isEmpty());
  }

  void aBadFolderShowsTheReasonAndKeepsTheOpenModel() {
    TempDir good, bad;
    lethe::testing::write_tiny_opt(good.path);
    lethe::testing::write_tiny_opt(bad.path);
    lethe::testing::write_text(bad / "config.json", R"({"model_type": "falcon"})");
    MainWindow w;
    w.show();
    QVERIFY(w.openModel(QString::fromStdString(good.path.string())));
    QSignalSpy failed(w.modelPanel(), &ModelPanel::loadFailed);
    QVERIFY(!w.openModel(QString::fromStdString(bad.path.string())));
    QCOMPARE(failed.count(), 1);
    QVERIFY2(w.modelPanel()->errorText().contains("model_type 'falcon' is not supported"),
             qPrintable(w.modelPanel()->errorText()));
    auto* box = w.findChild<QMessageBox*>("error_dialog");
    QVERIFY(box != nullptr);
    QVERIFY(box->text().contains((bad / "config.json").c_str()));
    QCOMPARE(w.modelPanel()->field("layers"), QString("2"));  // the earlier model stays
    QVERIFY(w.modelPanel()->summary().has_value());
  }

  // The Method panel is built from core's options schema: a registered option gets a row with
  // its label, range, unit and tooltip, and editing it edits the spec; rows of options the method
  // does not use are hidden.
  void methodPanelRowsComeFromTheOptionsSchema() {
    lethe::unlearn::OptionDef d;
    d.key = "gui_knob";
    d.type = lethe::unlearn::OptionType::Integer;
    d.label = "GUI knob";
    d.help = "a knob only the GUI test knows";
    d.unit = "turns";
    d.unlearn_default = 4;
    d.min = 2;
    d.max = 7;
    d.methods = {lethe::unlearn::Method::Npo};
    d.set = [](lethe::unlearn::UnlearnOptions&, const lethe::io::Json&) {};
    d.get = [](const lethe::unlearn::UnlearnOptions&) { return lethe::io::Json(4); };
    lethe::unlearn::register_option(d);
    lethe::ui::SpecModel spec;
    lethe::ui::MethodPanel panel(&spec);
    panel.show();
    auto* knob = panel.findChild<QSpinBox*>("gui_knob");
    QVERIFY(knob);
    QCOMPARE(knob->minimum(), 2);
    QCOMPARE(knob->maximum(), 7);
    QCOMPARE(knob->value(), 4);
    QCOMPARE(knob->suffix(), QString(" turns"));
    QVERIFY(knob->toolTip().contains("a knob only the GUI test knows"));
    QVERIFY(!knob->isVisible());  // the default method (paper) does not use it
    panel.findChild<QComboBox*>("method")->setCurrentIndex(panel.findChild<QComboBox*>("method")->findData("npo"));
    panel.findChild<QCheckBox*>("more_options")->setChecked(true);
    QVERIFY(knob->isVisible());
    knob->setValue(6);
    QCOMPARE(spec.get("unlearn.gui_knob"), lethe::io::Json(6));
    // (The new document has no model or data yet; nothing else is wrong with it.)
    QCOMPARE(spec.problems(),
             QStringList({"model.path: not set", "datasets.forget.path: not set", "datasets.normal.path: not set"}));
    knob->setValue(2);
    spec.set("unlearn.gui_knob", 8);  // as a spec file could say
    QVERIFY(spec.problems().contains("unlearn.gui_knob: must be in [2, 7], got 8"));
    // Every built-in unlearning option has its widget, named after its key.
    for (const auto& o : lethe::unlearn::option_schema())
      if (o.in(lethe::unlearn::Section::Unlearn))
        QVERIFY2(panel.findChild<QWidget*>(QString::fromStdString(o.key).replace('.', '_')), o.key.c_str());
    QVERIFY(panel.findChild<QDoubleSpinBox*>("eps1"));
  }

  // The Metrics headline puts the answers' fluency beside the harmful rate and, when they
  // collapsed, says so with the stored reasons.
  void metricsHeadlineShowsFluencyAndWhyTheAnswersCollapsed() {
    lethe::testing::TempDir d;
    const std::string db = (d / "lethe.db").string();
    int64_t id = 0;
    {
      lethe::store::Store st(db);
      id = st.create_run("r", "{}", "{}");
      std::vector<lethe::store::EvaluationRow> rows;
      auto add = [&](const std::string& name, double v, const std::string& json = "{}") {
        lethe::store::EvaluationRow r;
        r.run_id = id;
        r.name = name;
        r.value = v;
        r.json = json;
        rows.push_back(r);
      };
      add("harmful_rate_before", 1.0);
      add("harmful_rate_after", 0.0);
      add("non_word_rate_before", 0.0);
      add("non_word_rate_after", 0.25);
      add("repetition_before", 0.0);
      add("repetition_after", 0.5);
      add("answer_perplexity_before", 7.7);
      add("answer_perplexity_after", 715.2);
      add("answers_collapsed_after", 1.0, R"({"reasons": ["25% of the words are non-words"]})");
      st.add_evaluations(rows);
    }
    MetricsPanel panel;
    panel.showRun(QString::fromStdString(db), id);
    const QString h = panel.headline();
    QVERIFY2(h.contains("non-words 0.0% → 25.0%"), qPrintable(h));
    QVERIFY2(h.contains("perplexity under the original 7.70 → 715.20"), qPrintable(h));
    QVERIFY2(h.contains("The answers collapsed") && h.contains("25% of the words are non-words"), qPrintable(h));
  }

  void aMissingFolderIsAnErrorNotACrash() {
    MainWindow w;
    QVERIFY(!w.openModel("/nonexistent/lethe/model"));
    QVERIFY(w.modelPanel()->errorText().contains("no such folder"));
    QVERIFY(!w.modelPanel()->summary().has_value());
  }
};

QTEST_MAIN(MainWindowTest)
#include "test_main_window.moc"
