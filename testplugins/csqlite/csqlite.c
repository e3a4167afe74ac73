/* csqlite: a C plugin with the whole SQLite library compiled in, a test
   of what the sandbox admits from a C toolchain (build-other.sh). It
   loads the input's lines into an in-memory table and records the number
   of distinct lines as metadata distinct_lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"

__attribute__((import_module("docex"), import_name("doc_size"))) int64_t doc_size(int32_t h);
__attribute__((import_module("docex"), import_name("content_read"))) int32_t content_read(int32_t h, int64_t off, void *buf, int32_t len);
__attribute__((import_module("docex"), import_name("metadata_set"))) int32_t metadata_set(const char *k, int32_t kl, const char *v, int32_t vl);

__attribute__((export_name("docex_run"))) int32_t docex_run(void) {
	int64_t size = doc_size(0);
	if (size < 0 || size > (1 << 30)) return 1;
	char *buf = malloc((size_t)size + 1);
	if (!buf) return 1;
	int64_t off = 0;
	while (off < size) {
		int32_t n = content_read(0, off, buf + off, (int32_t)(size - off));
		if (n <= 0) break;
		off += n;
	}
	buf[off] = 0;
	sqlite3 *db;
	sqlite3_stmt *st;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE l(t TEXT)", 0, 0, 0) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO l VALUES (?)", -1, &st, 0) != SQLITE_OK) return 1;
	for (char *p = buf; *p;) {
		char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		sqlite3_bind_text(st, 1, p, (int)n, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE) return 1;
		sqlite3_reset(st);
		p += n + (e ? 1 : 0);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT t) FROM l", -1, &st, 0) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) return 1;
	int c = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(buf);
	char v[32];
	int vl = snprintf(v, sizeof v, "n%d", c);
	return metadata_set("distinct_lines", 14, v, vl) == 0 ? 0 : 1;
}
