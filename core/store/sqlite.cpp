#include "store/sqlite.h"

#include <sqlite3.h>

#include <cstdio>

#include "util/error.h"

namespace lethe::store {

Db::Db(const std::filesystem::path& path, int busy_timeout_ms) : path_(path), busy_timeout_ms_(busy_timeout_ms) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path.string() + ": cannot open the experiment store: " + msg);
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms_);
  try {
    exec("PRAGMA journal_mode=WAL");
  } catch (...) {
    sqlite3_close(db_);  // a foreign file is left as it was
    db_ = nullptr;
    throw;
  }
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

namespace {
std::string seconds(int ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000.0);
  return buf;
}
}  // namespace

std::string Db::describe(int rc, const std::string& sqlite_message, const std::string& sql) const {
  std::string what;
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      what = "the store is locked by another connection (waited " + seconds(busy_timeout_ms_) +
             "); try again when the other lethe or workbench run has written: ";
      break;
    case SQLITE_NOTADB:
      what = "not an experiment store (the file is not an SQLite database; left as it is): move it aside or choose another "
             "store (--store, $LETHE_STORE): ";
      break;
    case SQLITE_CORRUPT:
      what = "the store is corrupted (move it aside, or recover it with sqlite3's .recover): ";
      break;
    case SQLITE_FULL:
      what = "the disk holding the store is full: ";
      break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      what = "cannot write the store: ";
      break;
    case SQLITE_IOERR:
      what = "a write to the store failed (disk full or removed?): ";
      break;
    default:
      break;
  }
  return path_.string() + ": " + what + sqlite_message + " (in: " + sql.substr(0, 80) + ")";
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(describe(rc, msg, sql));
  }
}

int64_t Db::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }

Stmt::Stmt(Db& db, const std::string& sql) : db_(db), sql_(sql) {
  const int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &st_, nullptr);
  if (rc != SQLITE_OK) throw Error(db.describe(rc, sqlite3_errmsg(db.handle()), sql));
}

Stmt::~Stmt() { sqlite3_finalize(st_); }

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(st_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  sqlite3_bind_double(st_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
  sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(st_, i);
  return *this;
}

bool Stmt::step() {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const std::string msg = sqlite3_errmsg(db_.handle());
  sqlite3_reset(st_);  // a failed statement must not hold its transaction's locks
  throw Error(db_.describe(rc, msg, sql_));
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(st_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(st_, col); }
std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(st_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col))) : std::string();
}
bool Stmt::is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace lethe::store
