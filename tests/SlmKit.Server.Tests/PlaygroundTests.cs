using Microsoft.Playwright;

namespace SlmKit.Server.Tests;

/// <summary>The playground page in a real (headless) browser: Debian's chromium, driven by Playwright.</summary>
public sealed class PlaygroundTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task Sending_a_message_streams_the_reply_into_the_page()
    {
        if (!File.Exists(Chromium))
            Assert.Skip($"{Chromium} is not installed (apt-get install chromium); the browser test needs it");

        await using var server = await TestServer.StartAsync(new SlmServerOptions { Parallel = 2 });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
        var page = await browser.NewPageAsync();
        await page.GotoAsync(server.Server.Address.ToString());
        await Assertions.Expect(page.Locator("#model")).ToHaveTextAsync(server.Server.ModelId);

        await page.FillAsync("#max_tokens", "40");
        await page.FillAsync("#temperature", "0");
        await page.FillAsync("#input", "Tell me a story");
        await page.ClickAsync("#send");

        var reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).Not.ToBeEmptyAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#stats")).ToContainTextAsync("done", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#stats")).ToContainTextAsync("tokens/s");
        string text = await reply.InnerTextAsync();
        Assert.False(string.IsNullOrWhiteSpace(text));

        // The streamed text is what the API returns for the same request.
        var response = await server.PostJsonAsync("/v1/chat/completions",
            """{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":40,"temperature":0,"top_p":0.95}""");
        using var document = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        string expected = document.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(expected.Trim(), text.Trim());
    }
}
