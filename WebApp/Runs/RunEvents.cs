using System.Collections.Concurrent;
using System.Threading.Channels;
using MoTLab.Shared.Runs;

namespace MoTLab.WebApp.Runs;

/// <summary>In-process fan-out of run events to Blazor components (browser circuits live in this process;
/// external clients get the same events through the hub's run-{id} groups). Each subscriber has a bounded
/// queue; when a slow subscriber's queue is full its oldest event is dropped and it re-reads history.</summary>
public sealed class RunEvents
{
    private readonly ConcurrentDictionary<Guid, (int? RunId, Channel<RunEvent> Channel)> subscribers = new();

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
    }

    public sealed class Subscription(ChannelReader<RunEvent> reader, Action unsubscribe) : IDisposable
    {
        public ChannelReader<RunEvent> Reader { get; } = reader;
        public void Dispose() => unsubscribe();
    }
}
