package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor OTLP exporters may use
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// RegisterGRPC registers the OTLP trace service on s. Build s with
// GRPCServerOptions: without them oversized messages are capped by gRPC's
// 4 MiB default instead of MaxDecompressedBytes, and undecodable payloads
// are answered Internal instead of InvalidArgument.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	ptraceotlp.RegisterGRPCServer(s, &grpcServer{r: r})
}

// GRPCServerOptions returns the options an OTLP gRPC server needs:
//   - MaxRecvMsgSize = MaxDecompressedBytes (gRPC checks it after
//     decompression, so a gzip bomb is answered ResourceExhausted);
//   - a tap that refuses new streams with ResourceExhausted while every
//     decode slot is busy, before their messages are read;
//   - MaxConcurrentStreams = MaxConcurrentDecodes per connection;
//   - a codec and interceptor that repair spans with malformed ids (as
//     HTTP does) and answer undecodable messages InvalidArgument: gRPC
//     itself reports decode errors as Internal, which clients read as a
//     server fault;
//   - an interceptor that turns a handler panic into an Internal error
//     instead of a crashed process.
//
// The gzip compressor is registered by this package's import of
// google.golang.org/grpc/encoding/gzip.
func (r *Receiver) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(r.cfg.MaxDecompressedBytes)),
		grpc.MaxConcurrentStreams(uint32(r.cfg.MaxConcurrentDecodes)),
		grpc.InTapHandle(r.tap),
		grpc.ForceServerCodecV2(&repairCodec{base: encoding.GetCodecV2("proto"), errs: &r.decodeErrs}),
		grpc.ChainUnaryInterceptor(r.recoverInterceptor, r.decodeErrorInterceptor),
	}
}

// recoverInterceptor turns a panic in a handler into an Internal error.
// net/http survives a panicking handler; a gRPC server does not, and one bad
// request must not take down the process and every export in flight. No
// panic is known (the decoders and the handler are fuzzed); this is the net
// under the tightrope, so it logs loudly.
func (r *Receiver) recoverInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("otlp grpc: handler panicked", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

// traceExportMethod is the OTLP trace service's one method.
const traceExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

type grpcServer struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export implements the OTLP trace service.
func (g *grpcServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r := g.r
	if !r.acquire(ctx) {
		r.m.requests.WithLabelValues(protoGRPC, outcomeOverloaded).Inc()
		return ptraceotlp.ExportResponse{}, r.retryStatus(codes.ResourceExhausted, "too many requests being decoded")
	}
	start := time.Now()
	var once sync.Once
	release := func() {
		once.Do(func() {
			r.m.decodeSeconds.WithLabelValues(encodingGRPC).Observe(time.Since(start).Seconds())
			r.releaseSlot()
		})
	}
	defer release()
	res, err := r.export(ctx, protoGRPC, req.Traces(), release)
	switch {
	case errors.Is(err, errTooManySpans):
		r.m.requests.WithLabelValues(protoGRPC, outcomeTooLarge).Inc()
		return ptraceotlp.ExportResponse{}, status.Error(codes.InvalidArgument, statusMessage(err.Error()))
	case errors.Is(err, ErrOverloaded):
		r.m.requests.WithLabelValues(protoGRPC, outcomeOverloaded).Inc()
		return ptraceotlp.ExportResponse{}, r.retryStatus(codes.ResourceExhausted, err.Error())
	case err != nil:
		r.m.requests.WithLabelValues(protoGRPC, outcomeUnavailable).Inc()
		// The pipeline logged the store error, once per batch.
		return ptraceotlp.ExportResponse{}, r.retryStatus(codes.Unavailable, unavailableMessage(err))
	}
	resp := ptraceotlp.NewExportResponse()
	outcome := outcomeOK
	if n := res.Rejected(); n > 0 {
		outcome = outcomePartial
		resp.PartialSuccess().SetRejectedSpans(int64(n))
		resp.PartialSuccess().SetErrorMessage(res.Message())
	}
	r.m.requests.WithLabelValues(protoGRPC, outcome).Inc()
	return resp, nil
}

// retryStatus is a status with RetryInfo: OTLP exporters retry
// ResourceExhausted only when the server sends one, and honour its delay.
func (r *Receiver) retryStatus(code codes.Code, msg string) error {
	st := status.New(code, statusMessage(msg))
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{
		RetryDelay: durationpb.New(time.Duration(r.retryAfterSeconds()) * time.Second),
	}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// tap refuses a new stream while every decode slot is busy, before gRPC
// reads its message: under overload the server sheds load without
// buffering requests it cannot process.
func (r *Receiver) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName == traceExportMethod && len(r.slots) == cap(r.slots) {
		r.m.requests.WithLabelValues(protoGRPC, outcomeOverloaded).Inc()
		return ctx, r.retryStatus(codes.ResourceExhausted, "too many requests being decoded")
	}
	return ctx, nil
}

// otlpMessage is what pdata's generated request types offer.
type otlpMessage interface {
	UnmarshalProto([]byte) error
	Reset()
}

// repairCodec wraps pdata's gRPC codec. When pdata refuses a message, it
// retries after otlpconv.RepairProto (spans with malformed ids become
// spans Convert rejects, as over HTTP). When that fails too, it records the
// error for decodeErrorInterceptor and reports success, because gRPC would
// turn a codec error into Internal.
type repairCodec struct {
	base encoding.CodecV2
	errs *sync.Map // message pointer → decode error
}

func (c *repairCodec) Name() string { return c.base.Name() }

func (c *repairCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *repairCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(otlpMessage)
	if !ok {
		return err
	}
	m.Reset()
	if fixed, n, rerr := otlpconv.RepairProto(data.Materialize()); rerr == nil && n > 0 {
		if m.UnmarshalProto(fixed) == nil {
			return nil
		}
		m.Reset()
	}
	c.errs.Store(v, err)
	return nil
}

// decodeErrorInterceptor answers InvalidArgument for messages repairCodec
// could not decode. It runs for every message the codec saw: gRPC calls the
// interceptor right after a successful decode.
func (r *Receiver) decodeErrorInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err, ok := r.decodeErrs.LoadAndDelete(req); ok {
		r.m.requests.WithLabelValues(protoGRPC, outcomeBadRequest).Inc()
		return nil, status.Error(codes.InvalidArgument, statusMessage(fmt.Sprintf("otlp: decode protobuf: %v", err)))
	}
	return handler(ctx, req)
}
