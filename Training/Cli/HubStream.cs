using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using MoTLab.Shared.Runs;
using MoTLab.Shared.Telemetry;
using MoTLab.Training.Train;

namespace MoTLab.Training.Cli;

/// <summary>Telemetry sink that never blocks training: events go into a queue that a background loop
/// sends to the hub as soon as it is idle, at most 10 batches a second (so a fast run sends batches, a
/// slow one sends each step at once), and everything left at the end. Order is kept per kind.</summary>
public sealed class HubStream : ITelemetrySink, IAsyncDisposable
{
    private abstract record Item;
    private sealed record MetricItem(StepMetrics M) : Item;
    private sealed record RoutingItem(IReadOnlyList<RoutingSnapshot> S) : Item;
    private sealed record LogItem(string Line) : Item;
    private sealed record StatusItem(WorkerStatus S) : Item;
    private sealed record CheckpointItem(CheckpointInfo C) : Item;

    private readonly HubConnection connection;
    private readonly int runId;
    private readonly string token;
    private readonly Channel<Item> queue = Channel.CreateUnbounded<Item>(new() { SingleReader = true });
    private readonly Task pump;

    private readonly Action<string> refused;

    /// <param name="refused">Told when the dashboard answers a call with an error (the run was deleted, its token
    /// expired, the database failed): that message is dropped, the stream goes on.</param>
    public HubStream(HubConnection connection, int runId, string token, Action<string> refused)
    {
        this.connection = connection; this.runId = runId; this.token = token; this.refused = refused;
        pump = Task.Run(PumpAsync);
    }

    public void OnStep(StepMetrics m) => queue.Writer.TryWrite(new MetricItem(m));
    public void OnRouting(IReadOnlyList<RoutingSnapshot> s) => queue.Writer.TryWrite(new RoutingItem(s));
    public void OnLog(string line) => queue.Writer.TryWrite(new LogItem(line));
    public void Status(WorkerStatus s) => queue.Writer.TryWrite(new StatusItem(s));
    public void OnCheckpoint(long step, string path, double? trainLoss, double? evalLoss) =>
        queue.Writer.TryWrite(new CheckpointItem(new CheckpointInfo(step, path, trainLoss, evalLoss)));

    async Task PumpAsync()
    {
        var reader = queue.Reader;
        var next = reader.WaitToReadAsync().AsTask();
        while (true)
        {
            if (await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(15))) != next)
            {
                await Send(RunsHubContract.Heartbeat, null);     // nothing to say for 15 s: say so
                continue;
            }
            if (!await next) break;
            var metrics = new List<StepMetrics>(); var routing = new List<RoutingSnapshot>(); var log = new List<string>();
            var statuses = new List<WorkerStatus>(); var checkpoints = new List<CheckpointInfo>();
            while (reader.TryRead(out var item))
                switch (item)
                {
                    case MetricItem m: metrics.Add(m.M); break;
                    case RoutingItem r: routing.AddRange(r.S); break;
                    case LogItem l: log.Add(l.Line); break;
                    case StatusItem s: statuses.Add(s.S); break;
                    case CheckpointItem c: checkpoints.Add(c.C); break;
                }
            // a status that ends the run goes after the data it summarises
            foreach (var s in statuses.Where(s => s.Status == RunStatus.Running)) await Send(RunsHubContract.ReportStatus, s);
            if (log.Count > 0) await Send(RunsHubContract.ReportLog, log);
            foreach (var chunk in metrics.Chunk(500)) await Send(RunsHubContract.ReportMetrics, chunk);   // messages stay well under the hub's limit
            foreach (var snapshot in routing) await Send(RunsHubContract.ReportRouting, new[] { snapshot });
            foreach (var c in checkpoints) await Send(RunsHubContract.ReportCheckpoint, c);
            foreach (var s in statuses.Where(s => s.Status != RunStatus.Running)) await Send(RunsHubContract.ReportStatus, s);
            await Task.Delay(100);                           // what arrives meanwhile goes in the next batch
            next = reader.WaitToReadAsync().AsTask();
        }
    }

    /// <summary>Delivers one call, waiting out reconnections (the batch is kept and re-sent; the dashboard
    /// stores steps idempotently). Gives up only when the connection has closed for good.</summary>
    async Task Send(string method, object? payload)
    {
        while (true)
        {
            if (connection.State == HubConnectionState.Connected)
            {
                try
                {
                    await (payload is null ? connection.InvokeAsync(method, runId, token) : connection.InvokeAsync(method, runId, token, payload));
                    return;
                }
                catch (Exception) when (connection.State != HubConnectionState.Connected) { }   // dropped mid-call: resend after reconnecting
                catch (HubException e)
                {
                    refused($"{method}: {e.Message}");
                    return;
                }
            }
            else if (connection.State == HubConnectionState.Disconnected)
                throw new InvalidOperationException("the dashboard connection closed");
            await Task.Delay(200);
        }
    }

    /// <summary>Sends everything queued so far and stops the loop.</summary>
    public async Task FlushAsync()
    {
        queue.Writer.TryComplete();
        await pump;
    }

    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        try { await pump; } catch (Exception) { /* the run's outcome was already decided */ }
    }
}
