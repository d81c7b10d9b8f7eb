package epicme

import "fmt"

// Quota bounds how much one user may keep, so that one account (or one
// stolen token) cannot fill the disk every other user shares. Stores check
// it inside the write transaction that would cross it: the write is refused
// with ECONFLICT naming the limit, and nothing is stored.
//
// Bulk loads (BulkInsert) are an operator's tool and are not held to it.
type Quota struct {
	// Entries is the most entries one user may have.
	Entries int64
	// Tags is the most tags one user may have.
	Tags int64
	// Bytes is the most text one user may keep in entries: the UTF-8 bytes
	// of every title and content together.
	Bytes int64
}

// The default quota: far above what a person writes by hand (a thousand
// words a day for thirty years is about 60 MB), far below what fills a disk.
const (
	DefaultMaxEntriesPerUser = 100_000
	DefaultMaxTagsPerUser    = 1_000
	DefaultMaxBytesPerUser   = 256 << 20 // 256 MiB
)

// DefaultQuota is the quota of a store that was given none.
var DefaultQuota = Quota{Entries: DefaultMaxEntriesPerUser, Tags: DefaultMaxTagsPerUser, Bytes: DefaultMaxBytesPerUser}

// OrDefault returns q with each zero (or negative) limit replaced by the
// default one.
func (q Quota) OrDefault() Quota {
	if q.Entries <= 0 {
		q.Entries = DefaultQuota.Entries
	}
	if q.Tags <= 0 {
		q.Tags = DefaultQuota.Tags
	}
	if q.Bytes <= 0 {
		q.Bytes = DefaultQuota.Bytes
	}
	return q
}

// QuotaSetter is implemented by stores that enforce a Quota. Set it before
// the store serves requests.
type QuotaSetter interface {
	SetQuota(Quota)
}

// EntryBytes is what an entry counts against Quota.Bytes.
func EntryBytes(title, content string) int64 { return int64(len(title) + len(content)) }

// CheckNewEntry returns the error for adding an entry of size bytes to a
// journal that holds entries entries and used bytes, or nil.
func (q Quota) CheckNewEntry(entries, used, size int64) error {
	if entries >= q.Entries {
		return Errorf(ECONFLICT, "entry limit reached: a journal holds at most %d entries; delete some to write more", q.Entries)
	}
	return q.CheckBytes(used, size)
}

// CheckBytes returns the error for growing a journal that uses used bytes
// by grow bytes, or nil. Shrinking is always allowed.
func (q Quota) CheckBytes(used, grow int64) error {
	if grow > 0 && used+grow > q.Bytes {
		return Errorf(ECONFLICT, "size limit reached: the titles and contents of a journal may total at most %s (%d bytes); this write would make %d", humanBytes(q.Bytes), q.Bytes, used+grow)
	}
	return nil
}

// CheckNewTag returns the error for adding a tag to a journal that holds
// tags tags, or nil.
func (q Quota) CheckNewTag(tags int64) error {
	if tags >= q.Tags {
		return Errorf(ECONFLICT, "tag limit reached: a journal holds at most %d tags; delete some to make more", q.Tags)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
