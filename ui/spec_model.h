#pragma once
// The experiment spec being edited: one JSON document shared by the Model, Datasets and Method
// panels. Validation is core's (experiment::parse_spec); this class only holds and forwards.
#include <QObject>
#include <QString>
#include <QStringList>

#include "io/json.h"

namespace lethe::ui {

class SpecModel : public QObject {
  Q_OBJECT
 public:
  explicit SpecModel(QObject* parent = nullptr);

  const io::Json& doc() const { return doc_; }
  QString baseDir() const { return baseDir_; }
  // "unlearn.eps1" -> value; emits changed().
  void set(const std::string& path, const io::Json& value);
  io::Json get(const std::string& path, const io::Json& fallback = nullptr) const;
  void replace(const io::Json& doc, const QString& baseDir);
  // Every problem core finds, one per entry ("unlearn.lr: must be > 0, got 0.0"); empty when valid.
  QStringList problems() const;
  // A path field ("model.path", "datasets.forget.path") resolved against the spec's folder, as
  // core resolves it (experiment::resolve_spec_path); empty when unset.
  QString resolvedPath(const std::string& field) const;
  bool load(const QString& file, QString* error);
  bool save(const QString& file, QString* error) const;

 Q_SIGNALS:
  void changed();

 private:
  io::Json doc_;
  QString baseDir_;
};

// The default document: llm_unlearn's settings in corrected mode, small enough for a CPU.
io::Json default_spec();

}  // namespace lethe::ui
