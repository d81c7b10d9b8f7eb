package bench

import "strings"

// vocabulary is the word list journal text is drawn from, most frequent
// first. Text picks words by a Zipf law over this order, so a word's rank
// sets its selectivity: early words appear in most entries, words past the
// first few hundred in a few percent, which is how words in real diaries
// behave.
var vocabulary = uniqueWords(`
the and to a of i was it in that my we with for on at but had so this day
is were be as all out up about after just then there she he they her his
our me when time one today went got some more what would very back really
home over into like could from did well first little again still long night
morning good new around up too even because off much before down way felt
last work friend friends walk coffee evening made feel thought know while
only never always something nothing people family house room table window
door street city town road car train bus station park garden tree trees
water river lake sea beach sun rain snow wind cloud clouds sky light dark
cold warm hot quiet loud early late tired happy sad calm busy slow fast
small big old young long short bright soft hard easy strange lovely
mother father sister brother daughter son wife husband child children baby
grandmother grandfather aunt uncle cousin neighbor teacher doctor colleague
boss team meeting office project email phone call message letter book
books page story music song songs movie film show game games dinner lunch
breakfast tea bread soup cake apple apples cheese pasta rice salad fish
chicken kitchen cooking recipe market shop shopping money bill rent plan
plans week weekend month year summer winter spring autumn holiday trip
travel flight airport hotel map mountain mountains hill hills forest field
fields path trail bridge island village harbor boat ship bicycle bike run
running swim swimming yoga gym exercise sleep dream dreams bed pillow
blanket shower bath clothes shoes coat hat umbrella bag keys wallet glasses
laptop computer screen code bug meeting deadline report review notes idea
ideas question answer problem problems mistake lesson class school
university exam study studied learned learning remember remembered forgot
forget wrote writing read reading listened listening watched watching
played playing cooked cleaned fixed built painted drew sang danced laughed
cried smiled waited hoped wished worried wondered decided started finished
stopped tried helped asked told said talked spoke met visited called
texted bought sold paid lost found kept left arrived returned stayed moved
opened closed carried brought sent received shared missed loved liked
hated enjoyed noticed realized understood believed changed grew planted
picked baked boiled poured tasted smelled heard saw seen looked looking
walked walking drove driving rode sat stood lay woke slept ate drank
birthday wedding party concert festival museum gallery library church
temple theater cinema restaurant cafe bakery bar pub market square corner
balcony roof garden porch stairs hallway attic basement garage yard fence
gate wall floor ceiling lamp candle fire fireplace stove oven fridge sink
dog dogs cat cats bird birds horse cow sheep duck ducks fox deer rabbit
squirrel bee bees butterfly flowers flower rose roses tulips grass leaves
moss stone stones rock rocks sand shell shells wave waves tide storm
thunder lightning fog mist frost ice puddle rainbow sunset sunrise moon
stars star planet evening twilight midnight noon afternoon hour minute
grateful anxious nervous excited proud lonely curious hopeful restless
peaceful grumpy cheerful gentle honest patient brave stubborn clumsy
careful silly serious funny kind warmhearted generous thoughtful
forgiving jealous embarrassed relieved content overwhelmed inspired
bored confused surprised disappointed frustrated energetic sleepy hungry
thirsty sore sick healthy strong weak heavy light empty full broken whole
red blue green yellow orange purple pink brown black white grey golden
silver wooden glass paper plastic metal cotton wool silk leather velvet
chocolate vanilla cinnamon ginger lemon honey butter sugar salt pepper
garlic onion tomato tomatoes potato potatoes carrot carrots beans peas
strawberries blueberries cherries peaches pears grapes oranges bananas
walnut almonds olives mushrooms pumpkin spinach cucumber avocado noodles
dumplings pancakes waffles porridge yogurt omelette sandwich pizza curry
stew pie tart cookies biscuits jam marmalade wine beer cider lemonade
juice milk espresso latte cocoa
accordion violin piano guitar drums trumpet flute cello harmonica ukulele
painting sketch poem poems novel chapter diary journal photograph camera
album postcard stamp puzzle chess cards knitting sewing pottery woodwork
gardening hiking camping fishing sailing climbing skiing skating surfing
kayak canoe tent lantern compass backpack thermos picnic blanket hammock
promotion interview salary budget taxes invoice contract spreadsheet
presentation conference workshop deadline launch release migration
database server outage incident backlog roadmap sprint standup retro
feedback mentor intern manager client customer vendor partner startup
apartment landlord plumber electrician mechanic dentist pharmacy clinic
hospital nurse appointment prescription vaccine fever cough headache
migraine allergy bandage crutches stretches posture sunscreen vitamins
grandparents toddler teenager nephew niece godmother stepfather roommate
classmate penpal sweetheart fiance newborn puppy kitten goldfish hamster
parrot tortoise
lighthouse cathedral monastery vineyard orchard meadow glacier volcano
canyon waterfall lagoon reef marsh moor heath dune cliff cove fjord
peninsula archipelago savanna tundra oasis prairie bayou estuary delta
kilimanjaro lisbon kyoto reykjavik marrakech valparaiso tbilisi hanoi
oaxaca tromso ljubljana zanzibar cusco tasmania patagonia hokkaido
serendipity nostalgia solitude wanderlust melancholy euphoria reverie
epiphany gratitude resilience tenderness homesickness daydream sabbatical
pilgrimage equinox solstice eclipse aurora meteor comet constellation
`)

// uniqueWords splits s into words, keeping the first occurrence of each.
func uniqueWords(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.Fields(s) {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// moods, places and weathers fill the optional fields of entries.
var (
	moods = strings.Fields(`happy calm grateful tired anxious excited content restless proud
		hopeful sad peaceful curious nostalgic energetic`)
	places = []string{"home", "the office", "the park", "a cafe", "the beach", "the train",
		"grandma's house", "the library", "the mountains", "the garden", "a hotel", "the gym",
		"the market", "the airport", "a friend's flat", "the lake", "the old town", "the studio"}
	weathers = strings.Fields(`sunny cloudy rainy windy snowy foggy stormy mild humid frosty`)
	// tagNames are the names fixture users' tags are drawn from.
	tagNames = strings.Fields(`family work travel food health gratitude friends reading music
		nature exercise dreams ideas goals reflection cooking garden pets weekend holiday
		learning projects money home kids love art photography writing movies sleep
		morning evening faith volunteering weather city adventure memories milestones`)
)
