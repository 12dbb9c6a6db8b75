using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace MoTLab.WebApp.Runs;

/// <summary>Per-run worker tokens: issued at launch, valid while the run is active, compared in constant time.
/// Only their SHA-256 is kept (in memory and on the run row), never the token itself.</summary>
public sealed class WorkerTokens
{
    private readonly ConcurrentDictionary<int, byte[]> active = new();
    private readonly ConcurrentDictionary<int, DateTime> lastContact = new();

    /// <summary>Records that the run's worker just made a valid call.</summary>
    public void Touch(int runId) => lastContact[runId] = DateTime.UtcNow;

    /// <summary>How long the run's worker has been silent, or null if it has not called since this dashboard started.</summary>
    public TimeSpan? SilentFor(int runId) => lastContact.TryGetValue(runId, out var t) ? DateTime.UtcNow - t : null;

    public string Issue(int runId, out string hash)
    {
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();
        var h = Hash(token);
        active[runId] = h;
        hash = Convert.ToHexString(h);
        return token;
    }

    public bool IsValid(int runId, string? token) =>
        token is not null && active.TryGetValue(runId, out var h) && CryptographicOperations.FixedTimeEquals(h, Hash(token));

    public void Revoke(int runId)
    {
        active.TryRemove(runId, out _); lastContact.TryRemove(runId, out _);
        Revoked?.Invoke(runId);
    }

    /// <summary>Raised when a run's token stops being valid (the run ended or was deleted): its connections close.</summary>
    public event Action<int>? Revoked;

    /// <summary>The active run this token belongs to, if any.</summary>
    public int? RunOf(string? token)
    {
        if (string.IsNullOrEmpty(token)) return null;
        var h = Hash(token);
        foreach (var (run, v) in active) if (CryptographicOperations.FixedTimeEquals(v, h)) return run;
        return null;
    }

    public bool IsKnown(int runId) => active.ContainsKey(runId);

    /// <summary>A worker that outlived a dashboard restart: its token is checked against the hash stored on the
    /// run row, and remembered again when it matches.</summary>
    public bool Adopt(int runId, string? token, string? storedHash)
    {
        if (token is null || storedHash is null) return false;
        var h = Hash(token);
        if (!CryptographicOperations.FixedTimeEquals(h, Convert.FromHexString(storedHash))) return false;
        active[runId] = h;
        return true;
    }

    static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
