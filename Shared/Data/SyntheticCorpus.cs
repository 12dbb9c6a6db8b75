using System.Text;

namespace MoTLab.Shared.Data;

/// <summary>A deterministic multi-task corpus of distinct sub-languages, so that expert specialisation
/// has something to latch onto: arithmetic, bracket matching, string reversal, key-value lookup, sorting
/// and prose-like sentences from a small grammar. The same seed always gives the same text.</summary>
public static class SyntheticCorpus
{
    static readonly string[] Nouns = ["cat", "dog", "river", "engine", "teacher", "garden", "storm", "letter", "market", "child", "planet", "mountain"];
    static readonly string[] Verbs = ["sees", "follows", "builds", "finds", "carries", "paints", "hears", "moves", "watches", "opens"];
    static readonly string[] Adjectives = ["small", "quiet", "bright", "old", "heavy", "green", "rapid", "gentle", "strange", "cold"];
    static readonly string[] Adverbs = ["slowly", "today", "again", "quietly", "at night", "with care"];
    static readonly string[] Fruits = ["apple", "pear", "plum", "fig", "lime", "kiwi", "date", "grape"];

    public static IEnumerable<string> Documents(int count = 40_000, int seed = 0)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
            yield return (i % 6) switch
            {
                0 => Arithmetic(rng),
                1 => Brackets(rng),
                2 => Reversal(rng),
                3 => Lookup(rng),
                4 => Sorting(rng),
                _ => Prose(rng),
            } + "\n";
    }

    static string Arithmetic(Random r)
    {
        int a = r.Next(0, 1000), b = r.Next(0, 1000);
        return r.Next(3) switch { 0 => $"{a}+{b}={a + b}", 1 => $"{a}-{b}={a - b}", _ => $"{a % 100}*{b % 100}={a % 100 * (b % 100)}" };
    }

    static string Brackets(Random r)
    {
        const string open = "([{<", close = ")]}>";
        var sb = new StringBuilder(); var stack = new Stack<int>();
        int length = r.Next(4, 20);
        while (sb.Length < length || stack.Count > 0)
        {
            if (stack.Count > 0 && (sb.Length >= length || r.Next(2) == 0)) sb.Append(close[stack.Pop()]);
            else { int k = r.Next(4); stack.Push(k); sb.Append(open[k]); }
        }
        bool corrupt = r.Next(3) == 0;
        var text = sb.ToString();
        if (corrupt) { int at = r.Next(text.Length); text = text.Remove(at, 1); }
        return $"brackets {text} : {(Balanced(text) ? "ok" : "bad")}";
    }

    static bool Balanced(string s)
    {
        var stack = new Stack<char>();
        foreach (var c in s)
        {
            int o = "([{<".IndexOf(c), cl = ")]}>".IndexOf(c);
            if (o >= 0) stack.Push(c);
            else if (cl >= 0 && (stack.Count == 0 || stack.Pop() != "([{<"[cl])) return false;
        }
        return stack.Count == 0;
    }

    static string Reversal(Random r)
    {
        var chars = Enumerable.Range(0, r.Next(3, 12)).Select(_ => (char)('a' + r.Next(26))).ToArray();
        var word = new string(chars);
        Array.Reverse(chars);
        return $"reverse {word} -> {new string(chars)}";
    }

    static string Lookup(Random r)
    {
        var keys = Enumerable.Range(0, 10).OrderBy(_ => r.Next()).Take(4).ToArray();
        var pairs = keys.Select(k => (k, Fruits[r.Next(Fruits.Length)])).ToArray();
        var ask = pairs[r.Next(pairs.Length)];
        return $"{string.Join(' ', pairs.Select(p => $"k{p.k}={p.Item2}"))} ? k{ask.k} = {ask.Item2}";
    }

    static string Sorting(Random r)
    {
        var xs = Enumerable.Range(0, r.Next(3, 9)).Select(_ => r.Next(100)).ToArray();
        return $"sort {string.Join(' ', xs)} : {string.Join(' ', xs.Order())}";
    }

    static string Prose(Random r)
    {
        string Pick(string[] xs) => xs[r.Next(xs.Length)];
        var s = $"the {Pick(Adjectives)} {Pick(Nouns)} {Pick(Verbs)} the {Pick(Nouns)} {Pick(Adverbs)}";
        if (r.Next(2) == 0) s += $", and a {Pick(Adjectives)} {Pick(Nouns)} {Pick(Verbs)} it";
        return char.ToUpperInvariant(s[0]) + s[1..] + ".";
    }
}
