#include "tensor_table_model.h"

#include <QLocale>

#include "io/safetensors.h"

namespace lethe::ui {

TensorTableModel::TensorTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void TensorTableModel::setTensors(std::vector<model::TensorRow> rows) {
  beginResetModel();
  rows_ = std::move(rows);
  endResetModel();
}

int TensorTableModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : static_cast<int>(rows_.size()); }
int TensorTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TensorTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= static_cast<int>(rows_.size())) return {};
  const auto& r = rows_[static_cast<size_t>(index.row())];
  if (role == Qt::DisplayRole) {
    switch (index.column()) {
      case Name:
        return QString::fromStdString(r.name);
      case DType:
        return QString::fromStdString(r.dtype);
      case Shape:
        return QString::fromStdString(io::shape_string(r.shape));
      case Params:
        return QLocale().toString(static_cast<qlonglong>(r.numel));
      case File:
        return QString::fromStdString(r.file);
    }
  } else if (role == Qt::UserRole) {  // sort key
    if (index.column() == Params) return static_cast<qlonglong>(r.numel);
    return data(index, Qt::DisplayRole);
  } else if (role == Qt::TextAlignmentRole && index.column() == Params) {
    return int(Qt::AlignRight | Qt::AlignVCenter);
  }
  return {};
}

QVariant TensorTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case Name:
      return tr("Tensor");
    case DType:
      return tr("dtype");
    case Shape:
      return tr("Shape");
    case Params:
      return tr("Parameters");
    case File:
      return tr("File");
  }
  return {};
}

}  // namespace lethe::ui
