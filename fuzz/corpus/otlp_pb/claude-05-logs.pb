
¯
ˆ

	host.arch
amd64

os.type
linux


os.version
6.18.44-fc-v445

service.name
claude-code

service.version	
2.1.197¡
+
 com.anthropic.claude_code.events2.1.197Ó	À =$|/ê*
claude_code.tool_decision2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2

event.name
tool_decision2-
event.timestamp
2026-11-21T22:20:11.691Z2
event.sequence	23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
decision
accept2
source
config2
	tool_name
Bash2,
tool_use_id
toolu_mock_566d70b893d8dc89YÀ =$|/êŠ	À)z$|/ê*
claude_code.api_request2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2

event.name
api_request2-
event.timestamp
2026-11-21T22:20:11.695Z2
event.sequence
23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
model
claude-opus-4-82
input_tokens 2
output_tokensN2
cache_read_tokensÔ2
cache_creation_tokensx2
cost_usd	!²… %Ì”?2
cost_usd_microsÖž2
duration_ms†2)

request_id
req_mock_26f0d47b7c62d2c92
speed
normal2
query_source
sdk2
effort
highYÀ)z$|/êÿ	À)z$|/ê* 
claude_code.assistant_response2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2"

event.name
assistant_response2-
event.timestamp
2026-11-21T22:20:11.695Z2
event.sequence23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
response_length2
response

<REDACTED>2)

request_id
req_mock_26f0d47b7c62d2c92
model
claude-opus-4-82
query_source
sdkYÀ)z$|/êŒ	@ÿ½&|/ê*
claude_code.tool_result2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2

event.name
tool_result2-
event.timestamp
2026-11-21T22:20:11.733Z2
event.sequence23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
	tool_name
Bash2,
tool_use_id
toolu_mock_566d70b893d8dc892
success
true2
duration_ms
422
tool_input_size_bytes
1972
tool_result_size_bytes
1Y@ÿ½&|/ê