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
          {"unlearn", unlearn::default_section(unlearn::Section::Unlearn)},
          {"evaluation", {{"max_new_tokens", 48}}},
          {"output", {{"save", "merged"}}}};  // the folder: runs_home()/workbench (-2, -3, ...)
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
  QStringList out;
  for (const auto& p : experiment::spec_problems(doc_, baseDir_.toStdString())) out << QString::fromStdString(p.text());
  return out;
}

QString SpecModel::resolvedPath(const std::string& field) const {
  const io::Json v = get(field, "");
  if (!v.is_string() || v.get<std::string>().empty()) return {};
  return QString::fromStdString(experiment::resolve_spec_path(baseDir_.toStdString(), v.get<std::string>()).string());
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
