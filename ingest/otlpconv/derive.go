package otlpconv

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// Semantic-convention keys the derived columns read. Where a key was
// renamed, both names are kept: SDKs in the field send either, and the
// newer name wins when both are present.
const (
	keyServiceName       = "service.name"
	keyServiceVersion    = "service.version"
	keyHostName          = "host.name"
	keyServiceInstanceID = "service.instance.id"

	keyPeerService     = "peer.service"
	keyDBSystemName    = "db.system.name" // semconv ≥ 1.30
	keyDBSystem        = "db.system"      // legacy
	keyDBNamespace     = "db.namespace"   // semconv ≥ 1.26
	keyDBName          = "db.name"        // legacy
	keyRPCService      = "rpc.service"
	keyServerAddress   = "server.address" // semconv ≥ 1.21
	keyNetPeerName     = "net.peer.name"  // legacy
	keyHTTPHost        = "http.host"      // legacy
	keyMessagingSystem = "messaging.system"

	keyHTTPRequestBodySize        = "http.request.body.size"
	keyHTTPResponseBodySize       = "http.response.body.size"
	keyHTTPRequestContentLength   = "http.request_content_length"  // legacy
	keyHTTPResponseContentLength  = "http.response_content_length" // legacy
	keyRPCRequestBodySize         = "rpc.request.body.size"
	keyRPCResponseBodySize        = "rpc.response.body.size"
	keyRPCMessageUncompressedSize = "rpc.message.uncompressed_size"
	keyMessagingBodySize          = "messaging.message.body.size"
	keyMessagingPayloadSize       = "messaging.message_payload_size_bytes" // legacy

	keyHTTPRoute   = "http.route"
	keyURLTemplate = "url.template" // semconv ≥ 1.26: a client request's path template
	keyURLPath     = "url.path"     // semconv ≥ 1.21; url.full, http.url and http.target are redaction's
)

// spanObs collects, during the single encoding pass over a span's
// attributes, the values derivation needs. The first occurrence of a key
// wins, as pcommon.Map.Get would return it.
type spanObs struct {
	tenant     string
	tenantRank int // index in TenantKeys of tenant; len(TenantKeys) when none

	peerService, dbSystemName, dbSystem, dbNamespace, dbName string
	rpcService, serverAddress, netPeerName, httpHost         string
	messagingSystem                                          string

	// Body sizes; -1 when absent.
	httpReq, httpResp, httpReqLegacy, httpRespLegacy int64
	rpcReq, rpcResp, rpcUncompressed                 int64
	msgBody, msgBodyLegacy                           int64

	custom     int64 // sum of configured payload keys
	customSeen bool

	sampleRate     float64 // SampleRate's weight; 0 when it gives none
	sampleRateSeen bool

	// What templateSpanName reads (internal/spanname): the span's http.route and
	// url.template, whether it carries its URL, and its first SQL
	// statement as sent and as redacted, when redaction changed it.
	route, urlTemplate string
	hasURL             bool
	stmtRaw, stmtOut   string
}

func (o *spanObs) reset(tenantKeys int) {
	*o = spanObs{
		tenantRank: tenantKeys,
		httpReq:    -1, httpResp: -1, httpReqLegacy: -1, httpRespLegacy: -1,
		rpcReq: -1, rpcResp: -1, rpcUncompressed: -1,
		msgBody: -1, msgBodyLegacy: -1,
	}
}

func setText(dst *string, v attrValue) {
	if *dst == "" {
		*dst = valueText(v)
	}
}

// setRate keeps the weight of the first SampleRate, as pcommon.Map.Get
// would return it, whether or not it gives one.
func setRate(dst *float64, seen *bool, v attrValue) {
	if !*seen {
		*dst, *seen = sampleRateWeight(v), true
	}
}

func setSize(dst *int64, v attrValue) {
	if *dst < 0 {
		*dst = valueSize(v)
	}
}

// deriveKeys are the keys observeSpan and observeResource read besides the
// configured tenant and payload keys.
var deriveKeys = map[string]bool{
	keyServiceName: true, keyServiceVersion: true, keyHostName: true, keyServiceInstanceID: true,
	keyPeerService: true, keyDBSystemName: true, keyDBSystem: true, keyDBNamespace: true, keyDBName: true,
	keyRPCService: true, keyServerAddress: true, keyNetPeerName: true, keyHTTPHost: true, keyMessagingSystem: true,
	keyHTTPRequestBodySize: true, keyHTTPResponseBodySize: true, keyHTTPRequestContentLength: true,
	keyHTTPResponseContentLength: true, keyRPCRequestBodySize: true, keyRPCResponseBodySize: true,
	keyRPCMessageUncompressedSize: true, keyMessagingBodySize: true, keyMessagingPayloadSize: true,
	keySampleRate: true, keyHTTPRoute: true, keyURLTemplate: true,
}

// derivesFrom reports whether derivation reads key k, so that a redacted
// value of it must be what derivation sees.
func (c *Converter) derivesFrom(k string) bool {
	if c.configLens&lenBit(k) != 0 && (slices.Contains(c.tenantKeys, k) || slices.Contains(c.payloadKeys, k)) {
		return true
	}
	return deriveKeys[k]
}

// spanKey numbers the keys observeSpan reads by name (skNone: none of
// them), so that the attribute memo can remember which one a message's
// key is rather than compare the key with each again.
type spanKey uint8

const (
	skNone spanKey = iota
	skPeerService
	skDBSystemName
	skDBSystem
	skDBNamespace
	skDBName
	skRPCService
	skServerAddress
	skNetPeerName
	skHTTPHost
	skMessagingSystem
	skHTTPRequestBodySize
	skHTTPResponseBodySize
	skHTTPRequestContentLength
	skHTTPResponseContentLength
	skRPCRequestBodySize
	skRPCResponseBodySize
	skRPCMessageUncompressedSize
	skMessagingBodySize
	skMessagingPayloadSize
	skSampleRate
	skHTTPRoute
	skURLTemplate
	skURL
)

func spanKeyOf(k string) spanKey {
	switch k {
	case keyPeerService:
		return skPeerService
	case keyDBSystemName:
		return skDBSystemName
	case keyDBSystem:
		return skDBSystem
	case keyDBNamespace:
		return skDBNamespace
	case keyDBName:
		return skDBName
	case keyRPCService:
		return skRPCService
	case keyServerAddress:
		return skServerAddress
	case keyNetPeerName:
		return skNetPeerName
	case keyHTTPHost:
		return skHTTPHost
	case keyMessagingSystem:
		return skMessagingSystem
	case keyHTTPRequestBodySize:
		return skHTTPRequestBodySize
	case keyHTTPResponseBodySize:
		return skHTTPResponseBodySize
	case keyHTTPRequestContentLength:
		return skHTTPRequestContentLength
	case keyHTTPResponseContentLength:
		return skHTTPResponseContentLength
	case keyRPCRequestBodySize:
		return skRPCRequestBodySize
	case keyRPCResponseBodySize:
		return skRPCResponseBodySize
	case keyRPCMessageUncompressedSize:
		return skRPCMessageUncompressedSize
	case keyMessagingBodySize:
		return skMessagingBodySize
	case keyMessagingPayloadSize:
		return skMessagingPayloadSize
	case keySampleRate:
		return skSampleRate
	case keyHTTPRoute:
		return skHTTPRoute
	case keyURLTemplate:
		return skURLTemplate
	case keyURLPath, keyURLFull, keyHTTPURL, keyHTTPTarget:
		return skURL
	}
	return skNone
}

func (c *Converter) observeSpan(o *spanObs, k string, v attrValue) {
	c.observeSpanKey(o, spanKeyOf(k), k, v)
}

// observeSpanKey is observeSpan of key k, whose spanKey is sk.
func (c *Converter) observeSpanKey(o *spanObs, sk spanKey, k string, v attrValue) {
	switch sk {
	case skPeerService:
		setText(&o.peerService, v)
	case skDBSystemName:
		setText(&o.dbSystemName, v)
	case skDBSystem:
		setText(&o.dbSystem, v)
	case skDBNamespace:
		setText(&o.dbNamespace, v)
	case skDBName:
		setText(&o.dbName, v)
	case skRPCService:
		setText(&o.rpcService, v)
	case skServerAddress:
		setText(&o.serverAddress, v)
	case skNetPeerName:
		setText(&o.netPeerName, v)
	case skHTTPHost:
		setText(&o.httpHost, v)
	case skMessagingSystem:
		setText(&o.messagingSystem, v)
	case skHTTPRequestBodySize:
		setSize(&o.httpReq, v)
	case skHTTPResponseBodySize:
		setSize(&o.httpResp, v)
	case skHTTPRequestContentLength:
		setSize(&o.httpReqLegacy, v)
	case skHTTPResponseContentLength:
		setSize(&o.httpRespLegacy, v)
	case skRPCRequestBodySize:
		setSize(&o.rpcReq, v)
	case skRPCResponseBodySize:
		setSize(&o.rpcResp, v)
	case skRPCMessageUncompressedSize:
		setSize(&o.rpcUncompressed, v)
	case skMessagingBodySize:
		setSize(&o.msgBody, v)
	case skMessagingPayloadSize:
		setSize(&o.msgBodyLegacy, v)
	case skSampleRate:
		setRate(&o.sampleRate, &o.sampleRateSeen, v)
	case skHTTPRoute:
		setText(&o.route, v)
	case skURLTemplate:
		setText(&o.urlTemplate, v)
	case skURL:
		o.hasURL = true
	}
	if c.configLens&lenBit(k) == 0 {
		return
	}
	c.observeTenant(&o.tenant, &o.tenantRank, k, v)
	for _, pk := range c.payloadKeys {
		if k == pk {
			if n := valueSize(v); n >= 0 {
				o.custom = addSat(o.custom, n)
				o.customSeen = true
			}
		}
	}
}

// observeTenant keeps the value of the earliest-listed tenant key seen.
func (c *Converter) observeTenant(tenant *string, rank *int, k string, v attrValue) {
	for i, tk := range c.tenantKeys[:*rank] {
		if k == tk {
			if t := valueText(v); t != "" {
				*tenant, *rank = t, i
			}
			return
		}
	}
}

// dependency names what a span talks to (DESIGN.md "Span row"): only
// client and producer spans and spans carrying a database system have one.
func (o *spanObs) dependency(kind store.SpanKind) string {
	dbSystem := cmp.Or(o.dbSystemName, o.dbSystem)
	if kind != store.KindClient && kind != store.KindProducer && dbSystem == "" {
		return ""
	}
	switch {
	case o.peerService != "":
		return o.peerService
	case dbSystem != "":
		if ns := cmp.Or(o.dbNamespace, o.dbName); ns != "" {
			return dbSystem + "/" + ns
		}
		return dbSystem
	case o.rpcService != "":
		return o.rpcService
	case o.serverAddress != "":
		return o.serverAddress
	case o.netPeerName != "":
		return o.netPeerName
	case o.httpHost != "":
		return o.httpHost
	default:
		return o.messagingSystem
	}
}

// payload is request plus response body bytes: the configured keys when
// any is present, else the semantic-convention keys (newest name first on
// each side). rpc.message.uncompressed_size, normally an event attribute,
// counts as the request side only when nothing better is on the span.
func (o *spanObs) payload() int64 {
	if o.customSeen {
		return o.custom
	}
	req := firstSize(o.httpReq, o.httpReqLegacy, o.rpcReq, o.msgBody, o.msgBodyLegacy, o.rpcUncompressed)
	resp := firstSize(o.httpResp, o.httpRespLegacy, o.rpcResp)
	return addSat(max(req, 0), max(resp, 0))
}

func firstSize(sizes ...int64) int64 {
	for _, s := range sizes {
		if s >= 0 {
			return s
		}
	}
	return -1
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// resourceObs collects the resource attributes the span row needs.
type resourceObs struct {
	service, version, host, instance string
	tenant                           string
	tenantRank                       int
	sampleRate                       float64
	sampleRateSeen                   bool
}

func (c *Converter) observeResource(o *resourceObs, k string, v attrValue) {
	switch k {
	case keyServiceName:
		setText(&o.service, v)
	case keyServiceVersion:
		setText(&o.version, v)
	case keyHostName:
		setText(&o.host, v)
	case keyServiceInstanceID:
		setText(&o.instance, v)
	case keySampleRate:
		setRate(&o.sampleRate, &o.sampleRateSeen, v)
	}
	if c.configLens&lenBit(k) != 0 {
		c.observeTenant(&o.tenant, &o.tenantRank, k, v)
	}
}

// valueText is the text form of a scalar attribute ("" for empty values,
// arrays, maps and bytes, which make no sense as a tenant or host).
func valueText(v attrValue) string {
	switch v.typ {
	case valStr:
		return v.str
	case valInt:
		return strconv.FormatInt(v.intVal(), 10)
	case valDouble:
		f := v.doubleVal()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return ""
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	case valBool:
		return strconv.FormatBool(v.boolVal())
	default:
		return ""
	}
}

// valueSize reads a byte count: an int, a finite non-negative double, or a
// decimal string. Anything else (and negative sizes) gives -1.
func valueSize(v attrValue) int64 {
	var n int64 = -1
	switch v.typ {
	case valInt:
		n = v.intVal()
	case valDouble:
		if f := v.doubleVal(); f >= 0 && f < math.MaxInt64 {
			n = int64(f)
		}
	case valStr:
		if p, err := strconv.ParseInt(strings.TrimSpace(v.str), 10, 64); err == nil {
			n = p
		}
	}
	if n < 0 {
		return -1
	}
	return n
}
