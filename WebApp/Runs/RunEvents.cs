using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;
using MoTLab.Shared.Runs;
using MoTLab.WebApp.Hubs;

namespace MoTLab.WebApp.Runs;

/// <summary>Fan-out of run events: to Blazor components in this process (each subscriber has a queue of 1,024;
/// when a slow one's queue is full its oldest event is dropped and it re-reads history), and to hub watchers
/// in the run-{id} groups (each event is one send; at most <see cref="MaxHubSendsInFlight"/> may be pending,
/// beyond that, which only a watcher that stopped reading causes, events are dropped and counted; the API
/// has the full history).</summary>
public sealed class RunEvents(IHubContext<RunsHub, IRunsClient> hub, ILogger<RunEvents> log)
{
    public const int MaxHubSendsInFlight = 1_000;
    private readonly ConcurrentDictionary<Guid, (int? RunId, Channel<RunEvent> Channel)> subscribers = new();
    private long hubInFlight, hubDropped;

    public long HubSendsInFlight => Interlocked.Read(ref hubInFlight);
    public long HubEventsDropped => Interlocked.Read(ref hubDropped);
    public int Subscribers => subscribers.Count;

    /// <summary>Events of one run, or of every run when <paramref name="runId"/> is null.</summary>
    public Subscription Subscribe(int? runId)
    {
        var channel = Channel.CreateBounded<RunEvent>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var id = Guid.NewGuid();
        subscribers[id] = (runId, channel);
        return new Subscription(channel.Reader, () => subscribers.TryRemove(id, out _));
    }

    public void Publish(RunEvent e)
    {
        foreach (var (_, (runId, channel)) in subscribers)
            if (runId is null || runId == e.RunId) channel.Writer.TryWrite(e);
        if (Interlocked.Increment(ref hubInFlight) > MaxHubSendsInFlight)
        {
            Interlocked.Decrement(ref hubInFlight);
            Interlocked.Increment(ref hubDropped);
            return;
        }
        _ = SendAsync(e);
    }

    async Task SendAsync(RunEvent e)
    {
        try { await hub.Clients.Group(RunsHub.RunGroup(e.RunId)).RunEvent(e); }
        catch (Exception ex) { log.LogWarning("sending a run {Id} event to watchers failed: {Message}", e.RunId, ex.Message); }
        finally { Interlocked.Decrement(ref hubInFlight); }
    }

    public sealed class Subscription(ChannelReader<RunEvent> reader, Action unsubscribe) : IDisposable
    {
        public ChannelReader<RunEvent> Reader { get; } = reader;
        public void Dispose() => unsubscribe();
    }
}
