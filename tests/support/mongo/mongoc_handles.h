// Owners (RAII) for the libmongoc and libbson handles that the MongoDB test support
// and the tests of the driver create: a client, a collection, a cursor (each a
// std::unique_ptr with its *_destroy function) and a heap bson_t (OwnedBson).
//
// Thread-safety: as the handles they own; libmongoc's client, collection and cursor
// are used by one thread at a time, and so are these owners.
#pragma once

#include <mongoc/mongoc.h>

#include <memory>
#include <utility>

namespace ticketaid::testing {

struct ClientDeleter {
  void operator()(mongoc_client_t* c) const { mongoc_client_destroy(c); }
};
struct CollectionDeleter {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
struct CursorDeleter {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};
using ClientPtr = std::unique_ptr<mongoc_client_t, ClientDeleter>;
using CollectionPtr = std::unique_ptr<mongoc_collection_t, CollectionDeleter>;
using CursorPtr = std::unique_ptr<mongoc_cursor_t, CursorDeleter>;

// Owns a heap bson_t. (std::unique_ptr<bson_t, D> trips -Wignored-attributes: bson_t
// is declared over-aligned.)
class OwnedBson {
 public:
  explicit OwnedBson(bson_t* doc = nullptr) : doc_(doc) {}
  ~OwnedBson() {
    if (doc_ != nullptr) bson_destroy(doc_);
  }
  OwnedBson(OwnedBson&& other) noexcept : doc_(std::exchange(other.doc_, nullptr)) {}
  OwnedBson& operator=(OwnedBson&&) = delete;
  OwnedBson(const OwnedBson&) = delete;
  OwnedBson& operator=(const OwnedBson&) = delete;
  bson_t* get() const { return doc_; }
  explicit operator bool() const { return doc_ != nullptr; }

 private:
  bson_t* doc_;
};

}  // namespace ticketaid::testing
