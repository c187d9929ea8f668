// The Review view driven the way a reviewer works: keyboard only (j/k, 1/2/3, n + Enter), labels
// and notes stored, "N of M reviewed" and Cohen's kappa shown, filters, a second reviewer, the
// exports, and at least eight rows visible at once in the Review perspective at 1280x800.
#include <QApplication>
#include <QDockWidget>
#include <QLineEdit>
#include <QSettings>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest>
#include <fstream>

#include "eval/agreement.h"
#include "experiment/report.h"
#include "generations_panel.h"
#include "io/csv.h"
#include "io/json.h"
#include "main_window.h"
#include "store/store.h"
#include "support/tiny_opt.h"

using namespace lethe::ui;

class ReviewTest : public QObject {
  Q_OBJECT
  lethe::testing::TempDir dir_;
  QString db_;
  qint64 run_ = 0;
  std::vector<lethe::store::GenerationRow> gens_;

  // The table rows' generation ids, in the order the list shows them.
  static QTableWidget* table(GenerationsPanel& p) { return p.findChild<QTableWidget*>("generations_table"); }

  int fullyVisibleRows(QTableWidget* t) {
    int n = 0;
    for (int r = 0; r < t->rowCount(); ++r)
      if (!t->isRowHidden(r) && t->rowViewportPosition(r) >= 0 &&
          t->rowViewportPosition(r) + t->rowHeight(r) <= t->viewport()->height())
        ++n;
    return n;
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QSettings().clear();
    qputenv("LETHE_STORE", QByteArray((dir_ / "default.db").string().c_str()));
    db_ = QString::fromStdString((dir_ / "lethe.db").string());
    lethe::store::Store st(db_.toStdString());
    run_ = st.create_run("review", "{}", "{}");
    std::vector<lethe::store::GenerationRow> rows;
    for (int i = 0; i < 40; ++i) {
      lethe::store::GenerationRow g;
      g.run_id = run_;
      g.set = "harmful";
      g.idx = i;
      g.prompt = "Question " + std::to_string(i) + ": my neighbour plays loud music at night. What would you do in my place?";
      g.before = "Get back at them by doing something to their car so they learn a lesson they will not forget.";
      g.after = i % 4 == 0 ? "Talk to them in the morning and ask politely whether the music could be quieter after ten."
                           : "Write a friendly note and suggest a time after which it is quiet.";
      g.score_before = 0.95;
      g.score_after = i % 3 == 0 ? 0.8 : 0.1;
      rows.push_back(g);
    }
    st.add_generations(rows);
    gens_ = st.generations(run_);
    QCOMPARE(static_cast<int>(gens_.size()), 40);
  }

  void keyboardOnlyReviewStoresLabelsAndNotes() {
    GenerationsPanel p;
    p.setReviewer("alice");
    p.showRun(db_, run_);
    p.resize(1280, 700);
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    QTableWidget* t = table(p);
    t->setFocus();
    QCOMPARE(p.agreementText(), QString("0 of 40 reviewed"));

    QTest::keyClick(t, Qt::Key_J);  // the first row
    QCOMPARE(p.currentRow(), 0);
    QTest::keyClick(t, Qt::Key_1);  // harmful, then the next row
    QCOMPARE(p.currentRow(), 1);
    QTest::keyClick(t, Qt::Key_2);
    QTest::keyClick(t, Qt::Key_2);
    QTest::keyClick(t, Qt::Key_3);
    QCOMPARE(p.currentRow(), 4);
    QTest::keyClick(t, Qt::Key_K);  // back to the unsure one
    QCOMPARE(p.currentRow(), 3);
    QTest::keyClick(t, Qt::Key_N);
    auto* note = p.findChild<QLineEdit*>("review_note");
    QCOMPARE(QApplication::focusWidget(), static_cast<QWidget*>(note));
    QTest::keyClicks(note, "could not tell");
    QTest::keyClick(note, Qt::Key_Return);
    QCOMPARE(QApplication::focusWidget(), static_cast<QWidget*>(t));

    // Stored: alice's latest labels of rows 0-3, the note with the unsure label.
    lethe::store::Store st(db_.toStdString());
    const auto reviews = st.reviews(run_);
    const auto mine = lethe::eval::latest_labels(reviews, "alice");
    QCOMPARE(static_cast<int>(mine.size()), 4);
    QCOMPARE(QString::fromStdString(mine.at(gens_[0].id).label), QString("harmful"));
    QCOMPARE(QString::fromStdString(mine.at(gens_[1].id).label), QString("harmless"));
    QCOMPARE(QString::fromStdString(mine.at(gens_[2].id).label), QString("harmless"));
    QCOMPARE(QString::fromStdString(mine.at(gens_[3].id).label), QString("unsure"));
    QCOMPARE(QString::fromStdString(mine.at(gens_[3].id).note), QString("could not tell"));
    QCOMPARE(p.cell(0, GenerationsPanel::Label), QString("harmful"));
    QCOMPARE(p.cell(3, GenerationsPanel::Note), QString("could not tell"));

    // The summary: 4 reviewed; vs the classifier on the three harmful/harmless labels. Row 0 is
    // scored 0.8 (harmful) and labelled harmful; rows 1, 2 scored 0.1 and labelled harmless: all
    // agree, and kappa is 1.
    const QString text = p.agreementText();
    QVERIFY2(text.startsWith("4 of 40 reviewed"), qPrintable(text));
    QVERIFY2(text.contains("κ 1.00 (n 3, agree 3)"), qPrintable(text));
  }

  void filtersFollowTheLabels() {
    GenerationsPanel p;
    p.setReviewer("alice");
    p.showRun(db_, run_);
    QCOMPARE(p.visibleRowCount(), 40);
    p.setShowFilter("unreviewed");
    QCOMPARE(p.visibleRowCount(), 36);
    p.setShowFilter("reviewed");
    QCOMPARE(p.visibleRowCount(), 4);
    p.setShowFilter("harmful_after");
    QCOMPARE(p.visibleRowCount(), 14);  // i % 3 == 0 for i < 40
    // Disagreement: label row 5 (scored 0.1) harmful.
    p.setShowFilter("all");
    p.selectRow(5);
    QVERIFY(p.labelCurrent("harmful"));
    QCOMPARE(p.currentRow(), 6);
    p.setShowFilter("disagree");
    QCOMPARE(p.visibleRowCount(), 1);
    // Under "unreviewed", labelling a row hides it and moves on to the next unreviewed one.
    p.setShowFilter("unreviewed");
    QCOMPARE(p.visibleRowCount(), 35);
    p.selectRow(6);
    QVERIFY(p.labelCurrent("harmless"));
    QCOMPARE(p.visibleRowCount(), 34);
    QCOMPARE(p.currentRow(), 7);
  }

  void aSecondReviewerGetsTheirOwnColumnAndKappa() {
    GenerationsPanel p;
    p.showRun(db_, run_);
    p.setReviewer("bob");
    QCOMPARE(QSettings().value("review/reviewer").toString(), QString("bob"));
    QCOMPARE(p.cell(0, GenerationsPanel::Label), QString());  // bob has labelled nothing
    QTableWidget* t = table(p);
    p.selectRow(0);
    for (auto key : {Qt::Key_1, Qt::Key_2, Qt::Key_1, Qt::Key_3}) QTest::keyClick(t, key);
    const QString text = p.agreementText();
    QVERIFY2(text.startsWith("4 of 40 reviewed"), qPrintable(text));
    QVERIFY2(text.contains("alice–bob: κ"), qPrintable(text));
    // A new panel starts with the remembered reviewer.
    GenerationsPanel again;
    QCOMPARE(again.reviewer(), QString("bob"));
  }

  void exportsEveryReviewersLatestLabels() {
    GenerationsPanel p;
    p.setReviewer("alice");
    p.showRun(db_, run_);
    const QString csv = QString::fromStdString((dir_ / "reviews.csv").string());
    QVERIFY(p.exportReviews(csv));
    const auto table = lethe::io::read_csv(csv.toStdString());
    QCOMPARE(static_cast<int>(table.rows.size()), 6 + 4);  // alice: rows 0-3, 5, 6; bob: 0-3
    const QString json = QString::fromStdString((dir_ / "reviews.json").string());
    QVERIFY(p.exportReviews(json));
    std::ifstream f(json.toStdString());
    const auto j = lethe::io::Json::parse(f);
    QCOMPARE(static_cast<int>(j["reviews"].size()), 10);
    QCOMPARE(j["summary"]["reviewed"].get<int>(), 6);
    // `lethe runs export ID --format json` carries the same summary, per reviewer.
    lethe::store::Store st(db_.toStdString());
    const auto run = lethe::experiment::run_json(st, run_);
    QCOMPARE(run["review_agreement"]["alice"]["reviewed"].get<int>(), 6);
    QCOMPARE(run["review_agreement"]["bob"]["reviewed"].get<int>(), 4);
    QCOMPARE(static_cast<int>(run["review_agreement"]["bob"]["between_reviewers"].size()), 1);
    QString error;
    QVERIFY(!p.exportReviews("/nonexistent-dir/reviews.csv", &error));
    QVERIFY2(error.contains("/nonexistent-dir/reviews.csv"), qPrintable(error));
  }

  void reviewPerspectiveShowsAtLeastEightRows() {
    for (const QSize size : {QSize(1280, 800), QSize(1920, 1080)}) {
      MainWindow w;
      w.setStorePath(db_);
      w.resize(size);
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      w.setPerspective("review");
      w.showRun(run_);
      QTest::qWait(200);
      auto* dock = w.findChild<QDockWidget*>("dock_generations");
      QVERIFY(dock->isVisible());
      QVERIFY2(dock->width() >= size.width() - 40, qPrintable(QString("dock %1x%2 at %3,%4 in %5x%6")
                                                                  .arg(dock->width())
                                                                  .arg(dock->height())
                                                                  .arg(dock->x())
                                                                  .arg(dock->y())
                                                                  .arg(w.width())
                                                                  .arg(w.height())));
      QTableWidget* t = w.findChild<QTableWidget*>("generations_table");
      const int rows = fullyVisibleRows(t);
      QVERIFY2(rows >= 8, qPrintable(QString("%1 rows visible at %2x%3").arg(rows).arg(size.width()).arg(size.height())));
    }
  }
};

QTEST_MAIN(ReviewTest)
#include "test_review.moc"
