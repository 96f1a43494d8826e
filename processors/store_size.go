package processors

import (
	"io/fs"
	"path/filepath"
)

// StoreBytes returns the bytes on disk of the store of every partition
// of the table open on this instance (restored or restoring): the files
// under each store's directory. It walks the directories: call it when
// metrics are scraped, not per record.
func (r *TableReader) StoreBytes() map[int32]int64 {
	out := map[int32]int64{}
	for p := range r.partitions {
		st := r.builder.Store(r.topic, p)
		if st == nil || !st.IsOpen() {
			continue
		}
		var n int64
		_ = filepath.WalkDir(st.Dir(), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // removed meanwhile (compaction): skip it
			}
			if d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					n += info.Size()
				}
			}
			return nil
		})
		out[p] = n
	}
	return out
}
