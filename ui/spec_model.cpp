#include "spec_model.h"

#include <QDir>
#include <QFileInfo>

#include "experiment/spec.h"
#include "util/error.h"

namespace lethe::ui {

io::Json default_spec() {
  return {{"name", "workbench"},
          {"seed", 8888},
          {"model", {{"path", ""}, {"dtype", "fp32"}, {"device", "auto"}}},
          {"datasets", {{"forget", {{"path", ""}}}, {"normal", {{"path", ""}}}}},
          {"unlearn",
           {{"method", "paper"}, {"mode", "corrected"}, {"eps1", 0.5}, {"eps2", 1.0}, {"eps3", 1.0}, {"K", 5}, {"lr", 2e-6},
            {"steps", 1000}, {"batch", 2}, {"precision", "fp32"}, {"lora", {{"rank", 0}, {"alpha", 16}}}}},
          {"evaluation", {{"max_new_tokens", 48}}},
          {"output", {{"dir", "runs/workbench"}, {"save", "merged"}}}};
}

SpecModel::SpecModel(QObject* parent) : QObject(parent), doc_(default_spec()), baseDir_(QDir::currentPath()) {}

void SpecModel::set(const std::string& path, const io::Json& value) {
  experiment::apply_override(doc_, path + "=" + value.dump());
  Q_EMIT changed();
}

io::Json SpecModel::get(const std::string& path, const io::Json& fallback) const {
  const io::Json* cur = &doc_;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object() || !cur->contains(key)) return fallback;
    cur = &(*cur)[key];
    if (dot == std::string::npos) return *cur;
    start = dot + 1;
  }
}

void SpecModel::replace(const io::Json& doc, const QString& baseDir) {
  doc_ = doc;
  baseDir_ = baseDir;
  Q_EMIT changed();
}

QStringList SpecModel::problems() const {
  try {
    experiment::parse_spec(doc_, baseDir_.toStdString());
  } catch (const std::exception& e) {
    QStringList lines = QString::fromStdString(e.what()).split('\n');
    if (lines.size() > 1 && lines.first().startsWith("invalid spec")) lines.removeFirst();
    for (auto& l : lines) l = l.trimmed();
    return lines;
  }
  return {};
}

bool SpecModel::load(const QString& file, QString* error) {
  try {
    io::Json j = io::read_json_file(file.toStdString());
    replace(j, QFileInfo(file).absolutePath());
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
}

bool SpecModel::save(const QString& file, QString* error) const {
  try {
    io::write_json_file(file.toStdString(), doc_);
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
}

}  // namespace lethe::ui
