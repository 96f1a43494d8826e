package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// peakRSS returns the peak resident set size of this process in bytes
// (VmHWM of /proc/self/status: the high-water mark of the memory this
// program mapped since it was executed), or 0 where there is no /proc.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			f := bytes.Fields(rest) // "123456", "kB"
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
