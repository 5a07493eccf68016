//go:build !linux

package config

import uci "github.com/digineo/go-uci"

func memTree([]byte) (uci.Tree, string, func()) { return nil, "", nil }
