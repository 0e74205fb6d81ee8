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
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor OTLP exporters may use
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RegisterGRPC registers the OTLP trace service on s. Build s with
// GRPCServerOptions: the service speaks raw protobuf through the codec they
// install, and without it every request fails (Internal), never succeeds.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	s.RegisterService(&traceServiceDesc, &grpcServer{r: r})
}

// GRPCServerOptions returns the options an OTLP gRPC server needs:
//   - MaxRecvMsgSize = MaxDecompressedBytes (gRPC checks it after
//     decompression, so a gzip bomb is answered ResourceExhausted);
//   - a tap that refuses new streams with ResourceExhausted while every
//     decode slot is busy, before their messages are read;
//   - MaxConcurrentStreams = MaxConcurrentDecodes per connection;
//   - a codec that hands the handler the message's bytes, so the handler
//     decodes them under a decode slot and answers a malformed message
//     InvalidArgument: gRPC turns a codec's decode error into Internal,
//     which clients read as a server fault;
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
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.ChainUnaryInterceptor(r.recoverInterceptor),
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

// rawMessage is an OTLP request or response in protobuf form.
type rawMessage struct{ b []byte }

// rawCodec moves rawMessages as they are; gRPC has decompressed the
// message and checked MaxRecvMsgSize before Unmarshal.
type rawCodec struct{}

// Name is "proto": clients send application/grpc or application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("ingest: grpc codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("ingest: grpc codec: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize()
	return nil
}

// traceExporter is the handler type of traceServiceDesc.
type traceExporter interface {
	export(ctx context.Context, in *rawMessage) (*rawMessage, error)
}

// traceServiceDesc is the OTLP trace service with a raw-bytes handler (see
// rawCodec), as the generated code would declare it.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*traceExporter)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(rawMessage)
			if err := dec(in); err != nil {
				return nil, err
			}
			exp := srv.(traceExporter)
			if interceptor == nil {
				return exp.export(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: traceExportMethod}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return exp.export(ctx, req.(*rawMessage))
			})
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

type grpcServer struct {
	r *Receiver
}

// export implements the OTLP trace service: decode into rows (under a
// decode slot), commit, answer.
func (g *grpcServer) export(ctx context.Context, in *rawMessage) (*rawMessage, error) {
	r := g.r
	tenant, authOK := r.caller(grpcAuthorization(ctx))
	if !authOK {
		r.m.requests.WithLabelValues(protoGRPC, outcomeUnauthenticated).Inc()
		return nil, status.Error(codes.Unauthenticated, unauthenticatedMessage)
	}
	if !r.acquire(ctx) {
		r.m.requests.WithLabelValues(protoGRPC, outcomeOverloaded).Inc()
		return nil, r.retryStatus(codes.ResourceExhausted, "too many requests being decoded")
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
	// Straight into rows, as OTLP/HTTP protobuf is: the same rows and
	// errors as pdata's decoder and Convert (FuzzProtoDecoderMatchesPdata).
	rows, res, err := r.conv.ConvertProto(in.b)
	in.b = nil // the rows do not alias it
	release()
	if err != nil {
		r.m.requests.WithLabelValues(protoGRPC, outcomeBadRequest).Inc()
		return nil, status.Error(codes.InvalidArgument, statusMessage(err.Error()))
	}
	if err = r.admitCount(protoGRPC, res.Spans); err == nil {
		res, err = r.submit(ctx, protoGRPC, rows, tenant, res)
	}
	switch {
	case errors.Is(err, errTooManySpans):
		r.m.requests.WithLabelValues(protoGRPC, outcomeTooLarge).Inc()
		return nil, status.Error(codes.InvalidArgument, statusMessage(err.Error()))
	case errors.Is(err, ErrOverloaded):
		r.m.requests.WithLabelValues(protoGRPC, outcomeOverloaded).Inc()
		return nil, r.retryStatus(codes.ResourceExhausted, err.Error())
	case err != nil:
		r.m.requests.WithLabelValues(protoGRPC, outcomeUnavailable).Inc()
		// The pipeline logged the store error, once per batch.
		return nil, r.retryStatus(codes.Unavailable, unavailableMessage(err))
	}
	resp := ptraceotlp.NewExportResponse()
	outcome := outcomeOK
	if n := res.Rejected(); n > 0 {
		outcome = outcomePartial
		resp.PartialSuccess().SetRejectedSpans(int64(n))
		resp.PartialSuccess().SetErrorMessage(res.Message())
	}
	b, err := resp.MarshalProto()
	if err != nil {
		// The spans are committed; an empty response still says so.
		r.log.Warn("otlp grpc: marshal response", "err", err)
		b = nil
	}
	r.m.requests.WithLabelValues(protoGRPC, outcome).Inc()
	return &rawMessage{b: b}, nil
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
